// Package kubernetes holds ordermesh's Kubernetes manifests (Kustomize: base/
// and overlays/redis, overlays/rabbitmq), the scripts that boot a
// single-node cluster on this machine (cluster/) and the modules that build
// what it runs (toolchain/). Its tests hold the Kubernetes variants of the
// Dapr resources to the self-hosted ones; the cluster tests are in k8stest/.
package kubernetes
