// Module of the pod sandbox program (the "pause" container) of make k8s-up's
// cluster. Separate from the root module.
module github.com/ordermesh/ordermesh/dapr/kubernetes/toolchain/pause

go 1.26
