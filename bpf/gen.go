// Package bpf holds the eBPF C sources of the dataplane and the Go bindings
// bpf2go generates from them. The objects are committed, so building needs
// no clang; `make generate` rebuilds them after a change to the C.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -go-package bpf -type port -type fdb_key -type netports -type settings -type addr_key -type addr6_key -type mac_key -type rule_key -type ct_key -type ct6_key -type ct_val -type rif_key -type rif -type route_key -type route -type neigh_key -type neigh -type nat_key -type nat -type ext -type meta_cfg -type meta_key -type meta_val -type snat_key -type snat_val -type rif6_key -type rif6 -type route6_key -type route6 -type neigh6_key -type ra -type meter_rule -type meter_set -type meter_addr_key -type meter_count -type meter_label -type ext6 -type ext6_key -type ext6_val -type frag_key -type frag_val -type qos_cfg -type qos_bkey -type pf_key -type pf_val Dataplane dataplane.c
