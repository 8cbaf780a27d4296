// Command etcd-raft-bench runs raftlab's reference core workload on etcd's raft library (3.4),
// so the bench lab can report raftlab's figures beside a mature implementation measured in the
// same session on the same machine.
//
// The workload: three raft.RawNode instances in one process, each with its own MemoryStorage,
// messages handed directly from one node's Ready to the destination node's Step (no transport, no
// disk). A leader is elected first (outside the timed section). Then, for each batch: propose
// batchEntries commands of payloadBytes bytes at the leader and run the Ready loop on all three
// nodes (persist hard state and entries to MemoryStorage, deliver messages, apply committed
// entries to a counter state machine, Advance) until the batch is committed and applied on all
// three nodes. The figure is committed-and-applied entries per second over all batches of a run.
//
// Two ways of proposing, both timed:
//
//	propose-each:  batchEntries calls to RawNode.Propose (one MsgProp per command);
//	one-message:   one RawNode.Step with a MsgProp carrying all batchEntries entries.
//
// Each run builds a fresh cluster, so every run applies the same commands and must end with the
// same checksum on every node; a mismatch is a failure (exit 1), never a figure.
//
// Output: one JSON line on stdout. Built in GOPATH mode against Debian's golang-etcd-server-dev
// by build.sh beside this file.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"runtime"
	"sort"
	"time"

	"go.etcd.io/etcd/raft"
	pb "go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/version"
)

// payloadBytes is the size of one command, the same as raftlab's core benchmark.
const payloadBytes = 16

// goldenMultiplier spreads the sequence number over the second half of a payload (2^64 / phi).
const goldenMultiplier uint64 = 0x9E3779B97F4A7C15

// settleRoundsMax bounds the Ready/deliver loop of one batch: the workload needs a handful of
// rounds, so reaching this bound means the cluster stopped making progress.
const settleRoundsMax = 100000

// stateMachine is the trivial counter every node applies committed commands to.
type stateMachine struct {
	appliedEntries uint64
	checksum       uint64
	appliedIndex   uint64
}

// apply folds one command into the counter: checksum += first word XOR second word (mod 2^64).
func (s *stateMachine) apply(data []byte) {
	first := binary.LittleEndian.Uint64(data[0:8])
	second := binary.LittleEndian.Uint64(data[8:16])
	s.checksum += first ^ second
	s.appliedEntries++
}

type member struct {
	id      uint64
	node    *raft.RawNode
	storage *raft.MemoryStorage
	machine stateMachine
}

type cluster struct {
	members []*member
	// queue holds messages produced by Ready and not yet stepped into their destination.
	queue []pb.Message
	// spare is the other half of the double-buffered queue (no allocation per round).
	spare []pb.Message
	// deliveredMessages counts messages stepped into their destination, for messages per batch.
	deliveredMessages uint64
}

func quietLogger() raft.Logger {
	return &raft.DefaultLogger{Logger: log.New(ioutil.Discard, "", 0)}
}

func newCluster(nodeCount int) *cluster {
	peers := make([]raft.Peer, nodeCount)
	for i := range peers {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
	}
	c := &cluster{}
	for i := 0; i < nodeCount; i++ {
		storage := raft.NewMemoryStorage()
		// Limits as etcd's server sets them (etcdserver/raft.go): 1 MiB per append message,
		// 512 append messages in flight per follower; no pre-vote, no check-quorum (neither
		// matters without elections during the timed section).
		config := &raft.Config{
			ID:              uint64(i + 1),
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         storage,
			MaxSizePerMsg:   1024 * 1024,
			MaxInflightMsgs: 512,
			Logger:          quietLogger(),
		}
		node, err := raft.NewRawNode(config)
		if err != nil {
			fail("NewRawNode: %v", err)
		}
		if err := node.Bootstrap(peers); err != nil {
			fail("Bootstrap: %v", err)
		}
		c.members = append(c.members, &member{id: uint64(i + 1), node: node, storage: storage})
	}
	return c
}

// handleReady runs one Ready cycle of m: persist, queue messages, apply, advance.
func (c *cluster) handleReady(m *member) {
	rd := m.node.Ready()
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := m.storage.SetHardState(rd.HardState); err != nil {
			fail("SetHardState: %v", err)
		}
	}
	if len(rd.Entries) > 0 {
		if err := m.storage.Append(rd.Entries); err != nil {
			fail("Append: %v", err)
		}
	}
	// Messages are sent after the entries they carry are persisted, as a follower must (§5.3).
	c.queue = append(c.queue, rd.Messages...)
	for i := range rd.CommittedEntries {
		entry := &rd.CommittedEntries[i]
		// Configuration changes were applied by Bootstrap; empty entries are the new leader's
		// no-op (§5.4.2). Neither is a command.
		if entry.Type == pb.EntryNormal && len(entry.Data) == payloadBytes {
			m.machine.apply(entry.Data)
		}
		m.machine.appliedIndex = entry.Index
	}
	m.node.Advance(rd)
}

// settle runs Ready cycles and delivers messages until no node has work and nothing is in flight.
func (c *cluster) settle() {
	for round := 0; round < settleRoundsMax; round++ {
		progressed := false
		for _, m := range c.members {
			for m.node.HasReady() {
				c.handleReady(m)
				progressed = true
			}
		}
		if len(c.queue) == 0 && !progressed {
			return
		}
		delivering := c.queue
		c.queue = c.spare[:0]
		for i := range delivering {
			message := delivering[i]
			if err := c.members[message.To-1].node.Step(message); err != nil {
				fail("Step %v to %d: %v", message.Type, message.To, err)
			}
		}
		c.deliveredMessages += uint64(len(delivering))
		c.spare = delivering[:0]
	}
	fail("settle: no quiet state after %d rounds", settleRoundsMax)
}

func (c *cluster) electFirstLeader() *member {
	// The bootstrap configuration entries must be applied first: a node with unapplied
	// configuration changes refuses to campaign.
	c.settle()
	leader := c.members[0]
	if err := leader.node.Campaign(); err != nil {
		fail("Campaign: %v", err)
	}
	c.settle()
	if leader.node.BasicStatus().RaftState != raft.StateLeader {
		fail("node %d did not become leader", leader.id)
	}
	return leader
}

// makeBatch returns the payloads of commands [first, first+count): each payload is the
// sequence number and the sequence number times goldenMultiplier, little-endian. One backing
// array per batch: the log keeps referencing the payloads, so nothing is reused.
func makeBatch(first uint64, count int) [][]byte {
	backing := make([]byte, count*payloadBytes)
	payloads := make([][]byte, count)
	for i := 0; i < count; i++ {
		sequence := first + uint64(i)
		data := backing[i*payloadBytes : (i+1)*payloadBytes : (i+1)*payloadBytes]
		binary.LittleEndian.PutUint64(data[0:8], sequence)
		binary.LittleEndian.PutUint64(data[8:16], sequence*goldenMultiplier)
		payloads[i] = data
	}
	return payloads
}

type runResult struct {
	entriesPerSecond  float64
	checksum          uint64
	appliedEntries    uint64
	deliveredMessages uint64
}

// runOnce builds a cluster, elects a leader, and times batchCount batches.
func runOnce(variant string, nodeCount, batchCount, batchEntries int, compact bool) runResult {
	c := newCluster(nodeCount)
	leader := c.electFirstLeader()
	deliveredBefore := c.deliveredMessages
	start := time.Now()
	for b := 0; b < batchCount; b++ {
		// The client builds each batch inside the timed loop (a few microseconds against the
		// hundreds Raft takes): building all of them first would keep millions of live payloads
		// on the heap and charge their garbage-collection scans to Raft.
		payloads := makeBatch(uint64(b*batchEntries), batchEntries)
		switch variant {
		case "propose-each":
			for _, data := range payloads {
				if err := leader.node.Propose(data); err != nil {
					fail("Propose: %v", err)
				}
			}
		case "one-message":
			entries := make([]pb.Entry, len(payloads))
			for i, data := range payloads {
				entries[i].Data = data
			}
			message := pb.Message{Type: pb.MsgProp, From: leader.id, Entries: entries}
			if err := leader.node.Step(message); err != nil {
				fail("Step MsgProp: %v", err)
			}
		default:
			fail("unknown variant %q", variant)
		}
		c.settle()
		target := uint64((b + 1) * batchEntries)
		for _, m := range c.members {
			if m.machine.appliedEntries != target {
				fail("batch %d: node %d applied %d commands, expected %d", b, m.id, m.machine.appliedEntries, target)
			}
			// Keep memory flat across thousands of batches: everything applied everywhere is
			// no longer needed by any follower, as a snapshot would let a server discard it (§7).
			if !compact {
				continue
			}
			if err := m.storage.Compact(m.machine.appliedIndex); err != nil {
				fail("Compact: %v", err)
			}
		}
	}
	elapsed := time.Since(start)
	first := c.members[0].machine
	for _, m := range c.members[1:] {
		if m.machine.checksum != first.checksum {
			fail("checksum differs: node 1 %x, node %d %x", first.checksum, m.id, m.machine.checksum)
		}
	}
	return runResult{
		entriesPerSecond:  float64(first.appliedEntries) / elapsed.Seconds(),
		checksum:          first.checksum,
		appliedEntries:    first.appliedEntries,
		deliveredMessages: c.deliveredMessages - deliveredBefore,
	}
}

type variantReport struct {
	Variant          string    `json:"variant"`
	EntriesPerSecond []float64 `json:"entriesPerSecond"`
	MedianPerSecond  float64   `json:"medianPerSecond"`
	Checksum         string    `json:"checksum"`
	AppliedEntries   uint64    `json:"appliedEntriesPerRun"`
	MessagesPerBatch float64   `json:"messagesPerBatch"`
}

type report struct {
	Peer         string          `json:"peer"`
	RaftVersion  string          `json:"raftVersion"`
	GoVersion    string          `json:"goVersion"`
	Gomaxprocs   int             `json:"gomaxprocs"`
	Nodes        int             `json:"nodes"`
	Batch        int             `json:"batch"`
	Batches      int             `json:"batches"`
	Runs         int             `json:"runs"`
	WarmupRuns   int             `json:"warmupRuns"`
	PayloadBytes int             `json:"payloadBytes"`
	Compact      bool            `json:"compact"`
	Variants     []variantReport `json:"variants"`
}

func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	middle := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[middle]
	}
	return (sorted[middle-1] + sorted[middle]) / 2
}

func fail(format string, arguments ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd-raft-bench: "+format+"\n", arguments...)
	os.Exit(1)
}

func main() {
	batchCount := flag.Int("batches", 2000, "batches per timed run")
	batchEntries := flag.Int("batch", 1000, "commands per batch")
	runCount := flag.Int("runs", 5, "timed runs per variant")
	warmupRuns := flag.Int("warmup", 1, "untimed runs per variant before the timed ones")
	nodeCount := flag.Int("nodes", 3, "cluster size")
	compact := flag.Bool("compact", true, "compact every node's MemoryStorage up to the applied index after each batch")
	variantList := flag.String("variants", "propose-each,one-message", "comma-separated variants")
	flag.Parse()
	if *batchCount < 1 || *batchEntries < 1 || *runCount < 1 || *warmupRuns < 0 || *nodeCount < 1 {
		fail("bad flags: batches=%d batch=%d runs=%d warmup=%d nodes=%d", *batchCount, *batchEntries, *runCount, *warmupRuns, *nodeCount)
	}
	variants := splitList(*variantList)
	out := report{
		Peer:         "etcd-raft",
		RaftVersion:  version.Version,
		GoVersion:    runtime.Version(),
		Gomaxprocs:   runtime.GOMAXPROCS(0),
		Nodes:        *nodeCount,
		Batch:        *batchEntries,
		Batches:      *batchCount,
		Runs:         *runCount,
		WarmupRuns:   *warmupRuns,
		PayloadBytes: payloadBytes,
		Compact:      *compact,
	}
	for _, variant := range variants {
		if variant != "propose-each" && variant != "one-message" {
			fail("unknown variant %q (expected propose-each or one-message)", variant)
		}
		for w := 0; w < *warmupRuns; w++ {
			runOnce(variant, *nodeCount, *batchCount, *batchEntries, *compact)
		}
		entry := variantReport{Variant: variant}
		var checksum uint64
		for r := 0; r < *runCount; r++ {
			result := runOnce(variant, *nodeCount, *batchCount, *batchEntries, *compact)
			if r > 0 && result.checksum != checksum {
				fail("checksum differs between runs: %x then %x", checksum, result.checksum)
			}
			checksum = result.checksum
			entry.AppliedEntries = result.appliedEntries
			entry.MessagesPerBatch = float64(result.deliveredMessages) / float64(*batchCount)
			entry.EntriesPerSecond = append(entry.EntriesPerSecond, result.entriesPerSecond)
			// Each run's garbage is collected before the next run starts its clock.
			runtime.GC()
		}
		entry.Checksum = fmt.Sprintf("%016x", checksum)
		entry.MedianPerSecond = median(entry.EntriesPerSecond)
		out.Variants = append(out.Variants, entry)
	}
	encoded, err := json.Marshal(out)
	if err != nil {
		fail("json: %v", err)
	}
	fmt.Println(string(encoded))
}

func splitList(text string) []string {
	var items []string
	start := 0
	for i := 0; i <= len(text); i++ {
		if i == len(text) || text[i] == ',' {
			if i > start {
				items = append(items, text[start:i])
			}
			start = i + 1
		}
	}
	return items
}
