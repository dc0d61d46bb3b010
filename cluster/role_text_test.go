package cluster_test

import (
	"encoding/json"
	"testing"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// A Role reads as its name in JSON (issue 16, point 9), and the name
// reads back as the same Role; an unknown name or number is an error.
func TestRoleJSONText(t *testing.T) {
	for _, r := range []cluster.Role{cluster.RoleNone, cluster.RoleLeader, cluster.RoleFollower, cluster.RoleSingle} {
		b, err := json.Marshal(struct {
			Role cluster.Role `json:"role"`
		}{r})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"role":"` + r.String() + `"}`; string(b) != want {
			t.Fatalf("marshal %v: %s, want %s", r, b, want)
		}
		var back struct {
			Role cluster.Role `json:"role"`
		}
		if err := json.Unmarshal(b, &back); err != nil || back.Role != r {
			t.Fatalf("unmarshal %s: %v, %v", b, back.Role, err)
		}
	}
	var r cluster.Role
	if err := json.Unmarshal([]byte(`"captain"`), &r); err == nil {
		t.Fatal("unknown role name accepted")
	}
	if _, err := json.Marshal(cluster.Role(42)); err == nil {
		t.Fatal("unknown role marshalled")
	}
}
