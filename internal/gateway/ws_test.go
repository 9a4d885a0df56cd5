package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWebSocketSubscriptionSurvivesUpstreamDeath subscribes through the
// gateway, kills the WebSocket of the upstream serving the subscription,
// and checks that notifications keep coming under the same subscription id
// from another upstream; plain calls work on the same connection.
func TestWebSocketSubscriptionSurvivesUpstreamDeath(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, nil)
	h.poll(1)
	conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(h.front.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	send := func(s string) {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	type msg struct {
		ID     json.RawMessage
		Result json.RawMessage
		Error  *rpcError
		Method string
		Params struct {
			Subscription string
			Result       struct{ Node string }
		}
	}
	read := func() msg {
		t.Helper()
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	// readAnswer skips notifications until the answer to id arrives.
	readAnswer := func(id string) msg {
		t.Helper()
		for {
			if m := read(); string(m.ID) == id {
				return m
			}
		}
	}

	send(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`)
	ans := readAnswer("1")
	var subID string
	if ans.Error != nil || json.Unmarshal(ans.Result, &subID) != nil {
		t.Fatalf("subscribe: %s %v", ans.Result, ans.Error)
	}
	first := ""
	for first == "" {
		if m := read(); m.Method == "eth_subscription" {
			if m.Params.Subscription != subID {
				t.Fatalf("notification for %q, want %q", m.Params.Subscription, subID)
			}
			first = m.Params.Result.Node
		}
	}
	send(`{"jsonrpc":"2.0","id":2,"method":"web3_clientVersion"}`)
	if a := readAnswer("2"); a.Error != nil {
		t.Fatalf("call over websocket: %v", a.Error)
	}

	for _, n := range nodes {
		if n.name == first {
			n.killWS()
		}
	}
	for {
		m := read()
		if m.Method != "eth_subscription" {
			continue
		}
		if m.Params.Subscription != subID {
			t.Fatalf("notification for %q after failover, want %q", m.Params.Subscription, subID)
		}
		if m.Params.Result.Node != first {
			break // moved to another upstream under the same id
		}
	}
	send(`{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["` + subID + `"]}`)
	if a := readAnswer("3"); a.Error != nil || string(a.Result) != "true" {
		t.Fatalf("unsubscribe: %s %v", a.Result, a.Error)
	}
}

// TestWebSocketNeedsKey refuses an upgrade without a key when anonymous
// access is off.
func TestWebSocketNeedsKey(t *testing.T) {
	h := newHarness(t, threeNodes(t), func(c *Config) {
		c.AllowAnonymous = false
		c.Keys = []KeyConfig{{Name: "k", Key: "ws-secret-1", Methods: []string{"eth_*"}}}
	})
	url := "ws" + strings.TrimPrefix(h.front.URL, "http")
	_, resp, err := websocket.DefaultDialer.DialContext(t.Context(), url+"/", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("keyless upgrade: %v %v; want HTTP 401", resp, err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), url+"/v1/ws-secret-1", nil)
	if err != nil {
		t.Fatalf("keyed upgrade: %v", err)
	}
	conn.Close()
}
