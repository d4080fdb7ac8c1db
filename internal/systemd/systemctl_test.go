package systemd

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// What systemd 252 prints for `systemctl show -p ... app.socket app-worker@1.service`.
const showTwo = `Id=app.socket
LoadState=loaded
ActiveState=active
SubState=running
Listen=[::]:8080 (Stream)
Listen=/run/app/other.sock (Stream)

Id=app-worker@1.service
LoadState=loaded
ActiveState=failed
SubState=failed
Result=exit-code
NRestarts=3
MainPID=0
`

func TestParseShow(t *testing.T) {
	units := ParseShow(showTwo)
	if len(units) != 2 {
		t.Fatalf("%d units, want 2: %v", len(units), units)
	}
	if got := units[0]["Listen"]; got != "[::]:8080 (Stream)\n/run/app/other.sock (Stream)" {
		t.Errorf("a repeated property: %q", got)
	}
	if units[1]["Id"] != "app-worker@1.service" || units[1]["ActiveState"] != "failed" || units[1].Int("NRestarts") != 3 {
		t.Errorf("second unit: %v", units[1])
	}
	if units[0].Int("NRestarts") != 0 {
		t.Errorf("an absent number is not 0")
	}
}

func TestShowChecksTheCount(t *testing.T) {
	var args []string
	sc := Systemctl{Run: func(_ context.Context, a ...string) (string, error) { args = a; return showTwo, nil }}
	if _, err := sc.Show(context.Background(), []string{"Id", "Listen"}, "app.socket", "app-worker@1.service"); err != nil {
		t.Fatal(err)
	}
	if want := "show --no-pager -p Id,Listen app.socket app-worker@1.service"; strings.Join(args, " ") != want {
		t.Errorf("ran systemctl %s, want %s", strings.Join(args, " "), want)
	}
	if _, err := sc.Show(context.Background(), []string{"Id"}, "a", "b", "c"); err == nil {
		t.Error("three units asked, two answered: no error")
	}
}

func TestActiveInstances(t *testing.T) {
	out := `app-worker@10.service loaded active   running app: HTTP worker 10
app-worker@2.service  loaded active   running app: HTTP worker 2
app-worker@3.service  loaded inactive dead    app: HTTP worker 3
app-worker@1.service  loaded active   running app: HTTP worker 1
app-worker@4.service  loaded failed   failed  app: HTTP worker 4
`
	sc := Systemctl{Run: func(context.Context, ...string) (string, error) { return out, nil }}
	got, err := sc.ActiveInstances(context.Background(), "app-worker")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app-worker@1.service", "app-worker@2.service", "app-worker@10.service"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v (active ones in numeric order)", got, want)
	}
}
