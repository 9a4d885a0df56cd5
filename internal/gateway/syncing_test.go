package gateway

import (
	"encoding/json"
	"testing"
)

func TestSyncing(t *testing.T) {
	cases := []struct {
		name   string
		result string
		want   bool
	}{
		{"not syncing", `false`, false},
		{"fetching blocks", `{"currentBlock":"0x10","highestBlock":"0x20","startingBlock":"0x0"}`, true},
		// What geth --dev v1.17.8 answers at genesis: only its transaction
		// indexer has work left; its head is current.
		{"indexing only", `{"currentBlock":"0x0","highestBlock":"0x0","startingBlock":"0x0","txIndexFinishedBlocks":"0x0","txIndexRemainingBlocks":"0x1","stateIndexRemaining":"0x0"}`, false},
		{"caught up", `{"currentBlock":"0x20","highestBlock":"0x20"}`, false},
		{"bare true", `true`, true},
		{"unknown object", `{"progress":50}`, true},
		{"garbage", `"yes"`, true},
	}
	for _, c := range cases {
		if got := syncing(json.RawMessage(c.result)); got != c.want {
			t.Errorf("%s: syncing(%s) = %v, want %v", c.name, c.result, got, c.want)
		}
	}
}
