// Command rackctl is the Rackstack operator CLI: cluster status, join
// tokens, nodes. It authenticates from the OS_* variables like the
// openstack CLI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rackstack/rackstack/dataplane/dataplaneapi"
	"github.com/rackstack/rackstack/fabric/client"
	"github.com/rackstack/rackstack/fabric/cluster/clusterapi"
	"github.com/rackstack/rackstack/storage/block/blockapi"
	"github.com/rackstack/rackstack/storage/object/objectapi"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// errUsage marks errors of the invocation (exit 2) rather than of the call.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var output, url string
	connect := func() (*client.Client, error) {
		cfg, missing := client.FromEnv(getenv)
		if url != "" {
			cfg.BaseURL = url
			if cfg.AuthURL == "" {
				missing = ""
				if cfg.Token == "" && (cfg.Username == "" || cfg.Password == "") {
					missing = "OS_USERNAME/OS_PASSWORD"
				}
			}
		}
		if missing != "" {
			return nil, fmt.Errorf("%w: %s is not set (source an openrc file, e.g. <data-dir>/admin-openrc)", errUsage, missing)
		}
		return client.New(cfg), nil
	}
	emit := func(v any, table func(w io.Writer)) error {
		switch output {
		case "json":
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		case "table", "":
			table(stdout)
			return nil
		}
		return fmt.Errorf("%w: -o must be table or json, not %q", errUsage, output)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	root := &cobra.Command{Use: "rackctl", Short: "Operate a Rackstack cloud", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&url, "url", "", "rackd API URL (default: from OS_AUTH_URL, or RACKSTACK_URL)")

	clusterCmd := group("cluster", "The Raft cluster")
	clusterCmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Leader, members and health", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			return emit(st, func(w io.Writer) { printStatus(w, st, time.Now()) })
		},
	})
	var ttl time.Duration
	var uses int
	tokenCreate := &cobra.Command{
		Use: "create", Short: "Create a token that lets new nodes join", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if uses < 1 {
				return fmt.Errorf("%w: --uses must be at least 1 (how many nodes may join with the token)", errUsage)
			}
			c, err := connect()
			if err != nil {
				return err
			}
			t, err := c.CreateJoinToken(ctx, ttl, uses)
			if err != nil {
				return err
			}
			return emit(t, func(w io.Writer) {
				fmt.Fprintf(w, "token:   %s\nexpires: %s\nuses:    %d\n", t.Token, t.ExpiresAt.Local().Format(time.RFC3339), t.Uses)
			})
		},
	}
	tokenCreate.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	tokenCreate.Flags().IntVar(&uses, "uses", 1, "how many nodes may join with it")
	tokenList := &cobra.Command{
		Use: "list", Short: "List join tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			tokens, err := c.JoinTokens(ctx)
			if err != nil {
				return err
			}
			return emit(map[string]any{"join_tokens": tokens}, func(w io.Writer) { printJoinTokens(w, tokens) })
		},
	}
	tokenRevoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a join token: no node can join with it any more", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			if err := c.RevokeJoinToken(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked join token %s\n", args[0])
			return nil
		},
	}
	joinToken := group("join-token", "Join tokens")
	joinToken.AddCommand(tokenCreate, tokenList, tokenRevoke)
	clusterCmd.AddCommand(joinToken)

	nodeCmd := group("node", "Nodes of the cluster")
	nodeCmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List nodes", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			return emit(map[string]any{"nodes": nodes}, func(w io.Writer) { printNodes(w, nodes, time.Now()) })
		},
	}, &cobra.Command{
		Use: "show NAME", Short: "Show one node and its inventory", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			n, err := c.Node(ctx, args[0])
			if err != nil {
				return err
			}
			return emit(map[string]any{"node": n}, func(w io.Writer) { printNode(w, n, time.Now()) })
		},
	})
	storageCmd := group("storage", "The object store")
	storageCmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Disks per node, used and free space, shards to heal, rebalance progress", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			st, err := c.StorageStatus(ctx)
			if err != nil {
				return err
			}
			return emit(st, func(w io.Writer) { printStorage(w, st.Status, st.Volumes) })
		},
	})
	var dpNode string
	dpShow := &cobra.Command{
		Use: "show", Short: "A node's tenant ports, BPF programs, map fill and drop counters", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dpNode == "" {
				return errors.New("usage: dataplane show needs --node NAME")
			}
			c, err := connect()
			if err != nil {
				return err
			}
			st, err := c.DataplaneStatus(ctx, dpNode)
			if err != nil {
				return err
			}
			return emit(st, func(w io.Writer) { printDataplane(w, dpNode, st) })
		},
	}
	dpShow.Flags().StringVar(&dpNode, "node", "", "the node to show")
	dataplaneCmd := group("dataplane", "The eBPF tenant dataplane")
	dataplaneCmd.AddCommand(dpShow)
	bmCmd := group("baremetal", "Bare-metal nodes (the Ironic API, admin)")
	bmCmd.AddCommand(&cobra.Command{
		Use: "list", Short: "Bare-metal nodes: provision and power state, instance, conductor, last error", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			nodes, err := c.BaremetalNodes(ctx)
			if err != nil {
				return err
			}
			return emit(map[string]any{"nodes": nodes}, func(w io.Writer) { printBaremetalNodes(w, nodes) })
		},
	}, &cobra.Command{
		Use: "show NODE", Short: "One bare-metal node (UUID or name)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			n, err := c.BaremetalNode(ctx, args[0])
			if err != nil {
				return err
			}
			return emit(map[string]any{"node": n}, func(w io.Writer) { printBaremetalNode(w, n) })
		},
	})
	root.AddCommand(clusterCmd, nodeCmd, storageCmd, dataplaneCmd, bmCmd, volumeCommands(ctx, connect, emit, stdout))
	root.AddCommand(eventsCommand(ctx, connect, emit, &output, stdout), consoleCommand(ctx, connect, os.Stdin, stdout, stderr))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "rackctl: %v\n", strings.TrimPrefix(err.Error(), "usage: "))
		var apiErr *client.APIError
		if errors.As(err, &apiErr) || !isUsage(err) {
			return 1
		}
		return 2
	}
	return 0
}

// volumeCommands are the operator commands on the block store (admin).
func volumeCommands(ctx context.Context, connect func() (*client.Client, error), emit func(any, func(io.Writer)) error, stdout io.Writer) *cobra.Command {
	var size string
	var k, m int
	var unix bool
	create := &cobra.Command{
		Use: "create VOLUME --size SIZE", Short: "Create a raw block-store volume (no Cinder record; tenants use `openstack volume create`)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			n, err := parseSize(size)
			if err != nil {
				return fmt.Errorf("%w: --size: %v", errUsage, err)
			}
			c, err := connect()
			if err != nil {
				return err
			}
			v, err := c.CreateVolume(ctx, blockapi.CreateRequest{ID: args[0], Size: n, K: k, M: m})
			if err != nil {
				return err
			}
			return emit(v, func(w io.Writer) { fmt.Fprintf(w, "created volume %s (%d bytes, %d+%d)\n", v.ID, v.Size, v.K, v.M) })
		},
	}
	create.Flags().StringVar(&size, "size", "", "size in bytes, or with a K, M, G or T suffix (powers of 1024)")
	create.Flags().IntVar(&k, "k", 0, "data shards per stripe (default: the cluster's)")
	create.Flags().IntVar(&m, "m", 0, "parity shards per stripe")
	del := &cobra.Command{
		Use: "delete VOLUME", Short: "Delete a raw block-store volume or snapshot", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			if err := c.DeleteVolume(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted volume %s\n", args[0])
			return nil
		},
	}
	export := &cobra.Command{
		Use: "export VOLUME", Short: "Serve a volume that is not attached over NBD on the node answering, and print its URI", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			e, err := c.ExportVolume(ctx, args[0])
			if err != nil {
				return err
			}
			return emit(e, func(w io.Writer) {
				if unix {
					fmt.Fprintln(w, e.UnixURI)
				} else {
					fmt.Fprintln(w, e.URI)
				}
			})
		},
	}
	export.Flags().BoolVar(&unix, "unix", false, "print the unix socket URI instead of the loopback TCP one")
	unexport := &cobra.Command{
		Use: "unexport VOLUME", Short: "Stop serving a volume over NBD (its writes are flushed first)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			if err := c.UnexportVolume(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "unexported volume %s\n", args[0])
			return nil
		},
	}
	cmd := group("volume", "Block volumes: NBD exports for operators and backup tools (admin)")
	cmd.AddCommand(create, del, export, unexport)
	return cmd
}

// parseSize reads a byte count with an optional binary suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if s != "" {
		switch strings.ToUpper(s[len(s)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * mult, nil
}

// group is a command that only holds subcommands: alone it shows its
// help; with an unknown subcommand it is a usage error with suggestions
// (cobra itself does that only at the root).
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, SuggestionsMinimumDistance: 2,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return fmt.Errorf("%w: %s", errUsage, msg)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

func printJoinTokens(w io.Writer, tokens []clusterapi.JoinToken) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tEXPIRES\tUSES LEFT")
	for _, t := range tokens {
		expires := t.ExpiresAt.Local().Format(time.RFC3339)
		if t.Expired {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", t.ID, t.CreatedAt.Local().Format(time.RFC3339), expires, t.UsesLeft)
	}
	tw.Flush()
}

func isUsage(err error) bool {
	if errors.Is(err, errUsage) {
		return true
	}
	// cobra's own argument and flag errors
	msg := err.Error()
	return strings.Contains(msg, "unknown command") || strings.Contains(msg, "unknown flag") || strings.Contains(msg, "accepts ") || strings.Contains(msg, "invalid argument")
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printStatus(w io.Writer, st clusterapi.Status, now time.Time) {
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	health := "yes"
	switch {
	case !st.Healthy && st.Quorum:
		health = "no (degraded: quorum holds, writes work)"
	case !st.Healthy:
		health = "no (no quorum: writes stall)"
	}
	fmt.Fprintf(w, "node:     %s\nleader:   %s\nterm:     %d\napplied:  %d\ncommit:   %d\nhealthy:  %s\n", st.Node, leader, st.Term, st.AppliedIndex, st.CommitIndex, health)
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem:  %s\n", p)
	}
	if st.Halted != "" {
		fmt.Fprintf(w, "HALTED:   %s\n", st.Halted)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSUFFRAGE\tLEADER\tUP\tLAST CONTACT")
	members := append([]clusterapi.Member(nil), st.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Address, m.Suffrage, yes(m.Leader), yes(m.Up), ago(m.LastContact, now))
	}
	tw.Flush()
}

func printDataplane(w io.Writer, node string, st dataplaneapi.Status) {
	fmt.Fprintf(w, "node:     %s\nattach:   %s (pins in %s)\n", node, st.Attach, st.PinDir)
	switch {
	case st.Drift.Repaired > 0:
		fmt.Fprintf(w, "drift:    %d repaired; last %s at %s (something else writes these pins)\n", st.Drift.Repaired, st.Drift.Last, st.Drift.LastAt.UTC().Format(time.RFC3339))
	case st.Drift.VerifiedAt.IsZero():
		fmt.Fprintln(w, "drift:    not checked yet")
	default:
		fmt.Fprintf(w, "drift:    none (checked %s)\n", st.Drift.VerifiedAt.UTC().Format(time.RFC3339))
	}
	if st.Drift.Error != "" {
		fmt.Fprintf(w, "          last check failed: %s\n", st.Drift.Error)
	}
	if st.Uplink != nil {
		fmt.Fprintf(w, "uplink:   %s (ifindex %d, attached %v)\n", st.Uplink.Name, st.Uplink.Ifindex, st.Uplink.Attached)
	} else {
		fmt.Fprintln(w, "uplink:   none")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tDEVICE\tATTACHED\tVLAN\tMAC\tADDRESSES\tSECURITY\tRULE KEYS\tDHCP")
	for _, p := range st.Ports {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\t%v\t%d\t%v\n", p.ID, p.Device, p.Attached, p.VLAN, p.MAC, strings.Join(p.Addrs, ","), p.Security, p.Rules, p.DHCP)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tID\tTAG")
	for _, p := range st.Programs {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", p.Name, p.ID, p.Tag)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAP\tTYPE\tENTRIES\tMAX")
	for _, m := range st.Maps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", m.Name, m.Type, m.Entries, m.Max)
	}
	tw.Flush()
	fmt.Fprintln(w)
	names := make([]string, 0, len(st.Counters))
	for n := range st.Counters {
		names = append(names, n)
	}
	sort.Strings(names)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNTER\tPACKETS")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%d\n", n, st.Counters[n])
	}
	tw.Flush()
}

func printStorage(w io.Writer, st objectapi.Status, vol *blockapi.Usage) {
	placed := st.Parts - st.Misplaced
	fmt.Fprintf(w, "coding:     %d+%d for new objects\nblobs:      %d (%d placed, %d to move: rebalance %s)\n", st.K, st.M, st.Parts, placed, st.Misplaced, percent(placed, st.Parts))
	fmt.Fprintf(w, "to heal:    %d blobs on lost disks, %d queued by readers or the scrubber\ngarbage:    %d blobs to delete\n", st.Degraded, st.HealQueue, st.Garbage)
	fmt.Fprintf(w, "capacity:   %s GiB, %s GiB free (%d filesystems)\n", gib(st.Capacity.Total), gib(st.Capacity.Free), st.Capacity.Filesystems)
	fmt.Fprintf(w, "done:       %d shards healed, %d blobs moved (%d MiB copied), %d blobs scrubbed (%d bad shards), %d failed heals\n", st.Healed, st.Moved, st.MovedBytes>>20, st.Scrubbed, st.ScrubErrors, st.HealFailures)
	var answered []string
	for _, n := range st.Nodes {
		if n.Err == "" {
			answered = append(answered, n.Node)
		} else {
			fmt.Fprintf(w, "            not counted: node %s (%s)\n", n.Node, n.Err)
		}
	}
	fmt.Fprintf(w, "            (totals over nodes %s)\n", strings.Join(answered, ", "))
	if vol != nil {
		fmt.Fprintf(w, "volumes:    %d (%d snapshots), %s GiB provisioned, %s GiB written, %s GiB on disks, %s GiB garbage\n",
			vol.Volumes, vol.Snapshots, gib(uint64(vol.Provisioned)), gib(uint64(vol.Allocated)), gib(uint64(vol.Stored)), gib(uint64(vol.Garbage)))
	}
	if len(st.HealBackoff) > 0 {
		fmt.Fprintf(w, "\nblobs the healer cannot rebuild now (backing off):\n")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BLOB\tOBJECT\tHEALER\tFAILURES\tNEXT TRY\tREASON")
		for _, b := range st.HealBackoff {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", b.Blob, b.Object, b.Node, b.Failures, b.NextTry.Local().Format(time.TimeOnly), b.Reason)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tDISK\tPATH\tSTATE\tSHARDS\tUSED (GiB)\tFREE (GiB)\tSIZE (GiB)")
	for _, d := range st.Disks {
		state := "up"
		switch {
		case d.Gone:
			state = "gone"
		case !d.Up:
			state = "down"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.Node, d.ID, d.Path, state, d.Shards, gib(uint64(d.Used)), gib(d.Free), gib(d.Total))
	}
	tw.Flush()
}

func percent(a, b int) string {
	if b == 0 {
		return "100%"
	}
	return fmt.Sprintf("%d%%", a*100/b)
}

func gib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<30)) }

func printNodes(w io.Writer, nodes []clusterapi.NodeInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tCPUS\tMEMORY (GiB)\tAPI URL\tLAST HEARTBEAT")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", n.Name, n.Status, n.Inventory.CPUs, gib(n.Inventory.MemoryBytes), n.APIURL, ago(n.LastHeartbeat, now))
	}
	tw.Flush()
}

func printNode(w io.Writer, n clusterapi.NodeInfo, now time.Time) {
	inv := n.Inventory
	fmt.Fprintf(w, "name:            %s\nstatus:          %s\napi url:         %s\nraft address:    %s\njoined:          %s\nlast heartbeat:  %s\nhostname:        %s\nkernel:          %s\ncpu:             %d x %s\ncpu flags:       %s\nmemory:          %s GiB\n",
		n.Name, n.Status, n.APIURL, n.RaftAddress, n.JoinedAt.Local().Format(time.RFC3339), ago(n.LastHeartbeat, now), inv.Hostname, inv.Kernel, inv.CPUs, inv.CPUModel, strings.Join(inv.CPUFlags, " "), gib(inv.MemoryBytes))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDISK\tSIZE (GiB)\tROTATIONAL\tMODEL")
	for _, d := range inv.Disks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, gib(d.SizeBytes), yes(d.Rotational), d.Model)
	}
	fmt.Fprintln(tw, "\nNIC\tMAC\tMTU\tUP\tADDRESSES")
	for _, nic := range inv.NICs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", nic.Name, nic.MAC, nic.MTU, yes(nic.Up), strings.Join(nic.Addrs, " "))
	}
	tw.Flush()
}

func printBaremetalNodes(w io.Writer, nodes []client.BaremetalNode) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UUID\tNAME\tPROVISION\tPOWER\tMAINT\tINSTANCE\tCONDUCTOR\tLAST ERROR")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.UUID, dash(n.Name), stateWithTarget(n.ProvisionState, n.TargetProvisionState),
			dash(stateWithTarget(n.PowerState, n.TargetPowerState)), yes(n.Maintenance), dash(n.InstanceUUID), dash(n.Conductor), dash(n.LastError))
	}
	tw.Flush()
}

func printBaremetalNode(w io.Writer, n client.BaremetalNode) {
	fmt.Fprintf(w, "uuid:       %s\nname:       %s\ndriver:     %s\nclass:      %s\n", n.UUID, dash(n.Name), dash(n.Driver), dash(n.ResourceClass))
	fmt.Fprintf(w, "provision:  %s\npower:      %s\nmaintenance: %s\n", stateWithTarget(n.ProvisionState, n.TargetProvisionState),
		dash(stateWithTarget(n.PowerState, n.TargetPowerState)), yes(n.Maintenance))
	fmt.Fprintf(w, "instance:   %s\nconductor:  %s\nlast error: %s\n", dash(n.InstanceUUID), dash(n.Conductor), dash(n.LastError))
	for _, k := range []string{"cpus", "memory_mb", "local_gb", "cpu_arch"} {
		if v, ok := n.Properties[k]; ok {
			fmt.Fprintf(w, "%-11s %v\n", k+":", v)
		}
	}
}

// stateWithTarget shows a state and, while one is pending, where it is
// going ("cleaning → available").
func stateWithTarget(state, target string) string {
	if target == "" || target == state {
		return state
	}
	return state + " → " + target
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
