// Package k8stest holds the cluster tests (build tag k8s, `make k8s-test`):
// they boot the single-node cluster of dapr/kubernetes/cluster, deploy
// ordermesh with each overlay, check the guarantees that only replicas and a
// real orchestrator can break (pod kills and rolling restarts under load),
// and tear the cluster down, checking that nothing of it is left. With the
// k8sbench tag too, TestBench (`make k8s-bench`) boots the same cluster and
// measures the CPU an order costs on it and its latency (.bench/k8s.md).
package k8stest
