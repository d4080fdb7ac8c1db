package primary

import (
	"encoding/json"
	"strings"

	"app/internal/whatsapp"
)

// sandboxGroups sets up the sandbox's groups from the JSON the worker
// checked (docs/SANDBOX.md): groups, a list of whatsapp.SandboxGroup;
// refuse_adds, the users whose privacy refuses being added. The result:
// jids, the groups' JIDs in order, comma separated.
func sandboxGroups(sb *whatsapp.Sandbox, args map[string]string) (map[string]string, error) {
	var gs []whatsapp.SandboxGroup
	if args["groups"] != "" {
		if err := json.Unmarshal([]byte(args["groups"]), &gs); err != nil {
			return nil, err
		}
	}
	var refuse []string
	if args["refuse_adds"] != "" {
		if err := json.Unmarshal([]byte(args["refuse_adds"]), &refuse); err != nil {
			return nil, err
		}
	}
	sb.RefuseAdds(refuse...)
	return map[string]string{"jids": strings.Join(sb.SetGroups(gs), ",")}, nil
}

// sandboxGroupChange makes a change of a sandbox group elsewhere: group,
// sender; name, description; announce, locked, join_approval ("true" or
// "false"); invite_reset; joined, left, promoted, demoted, requested
// (JSON lists of JIDs).
func sandboxGroupChange(sb *whatsapp.Sandbox, a map[string]string) error {
	ch := whatsapp.GroupChanged{JID: a["group"], Sender: a["sender"], InviteReset: a["invite_reset"] == "true"}
	if v, ok := a["name"]; ok {
		ch.Name = &v
	}
	if v, ok := a["description"]; ok {
		ch.Description = &v
	}
	flag := func(k string) *bool {
		v, ok := a[k]
		if !ok {
			return nil
		}
		on := v == "true"
		return &on
	}
	ch.Announce, ch.Locked, ch.JoinApproval = flag("announce"), flag("locked"), flag("join_approval")
	var requested []string
	for k, dst := range map[string]*[]string{"joined": &ch.Joined, "left": &ch.Left, "promoted": &ch.Promoted,
		"demoted": &ch.Demoted, "requested": &requested} {
		if a[k] == "" {
			continue
		}
		if err := json.Unmarshal([]byte(a[k]), dst); err != nil {
			return err
		}
	}
	return sb.ChangeGroup(ch, requested)
}
