package sqlitestore

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// openTest opens a store on a fresh file, closed when t ends.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "app.db"))
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	return s
}

// smallTables hold at most a handful of rows whatever the traffic, so a
// scan of one costs nothing. Every other table, those written later
// included, counts as growing.
var smallTables = map[string]string{
	"heartbeats":    "one row per process of the machine, pruned when unseen",
	"leases":        "one row per primary epoch, those below the current pruned",
	"session":       "one WhatsApp session per account",
	"api_keys":      "the keys an operator made by hand",
	"webhooks":      "the subscriptions an operator made by hand",
	"webhook_state": "one row per webhook",
	// Not small, but read whole by design: the scheduler loads the progress
	// of every schedule when a primary takes over, which grows with the
	// schedules defined, not with history.
	"schedule_state": "one row per schedule, loaded whole at a takeover",
}

var (
	planScan    = regexp.MustCompile(`^(SCAN|SEARCH) (\S+)`)
	planIndex   = regexp.MustCompile(` USING (?:COVERING )?INDEX (\S+)`)
	planOrderBy = regexp.MustCompile(`^USE TEMP B-TREE FOR (?:RIGHT PART OF |LAST TERM OF |LAST \d+ TERMS OF )?ORDER BY`)
	sqlWhere    = regexp.MustCompile(`(?i)\bWHERE\b`)
	sqlLimit    = regexp.MustCompile(`(?i)\bLIMIT\b`)
	sqlOrderBy  = regexp.MustCompile(`(?i)\bORDER\s+BY\b`)
	sqlAggr     = regexp.MustCompile(`(?i)\b(?:count|sum|total|avg|min|max|group_concat)\s*\(`)
	sqlAlias    = regexp.MustCompile(`(?i)(?:\bFROM|\bJOIN|\bUPDATE|\bINTO|,)\s+(\w+)\s+(?:AS\s+)?(\w+)`)
	sqlCTE      = regexp.MustCompile(`(?i)(?:\bWITH(?:\s+RECURSIVE)?|,)\s+(\w+)\s+AS\s+(?:NOT\s+)?(?:MATERIALIZED\s+)?\(`)
	sqlNamed    = regexp.MustCompile(`[:@$][A-Za-z_]\w*`)
	notAlias    = map[string]bool{"WHERE": true, "ON": true, "USING": true, "SET": true, "ORDER": true, "GROUP": true,
		"LIMIT": true, "JOIN": true, "LEFT": true, "RIGHT": true, "FULL": true, "INNER": true, "CROSS": true, "NATURAL": true,
		"INDEXED": true, "NOT": true, "VALUES": true, "DEFAULT": true, "RETURNING": true, "UNION": true, "EXCEPT": true,
		"INTERSECT": true, "WINDOW": true, "HAVING": true, "SELECT": true, "AS": true, "OUTER": true}
)

// TestEveryStatementUsesAnIndex reads the plan of every statement the
// store declares (query and exec) and fails on a scan of a growing table
// (a full one, or one through an automatic index, which SQLite builds by
// scanning), and on a temporary B-tree sorting rows of a growing table
// for ORDER BY. Allowed: a scan of a table in smallTables; a scan of a
// partial index (it holds only the rows its WHERE selects, as a search
// would find them); a scan in a statement with ORDER BY and LIMIT and
// neither WHERE nor an aggregate, which walks the table in order and
// stops at the limit (the newest event). Not checked: temporary B-trees
// for GROUP BY and DISTINCT. Statements run with NULL arguments: the plan is chosen before
// the values are known.
func TestEveryStatementUsesAnIndex(t *testing.T) {
	s := openTest(t)
	c := newPlanChecker(t, s)
	if len(statements) == 0 {
		t.Fatal("no statements declared")
	}
	for _, st := range statements {
		if report := c.check(st.sql); report != "" {
			t.Error(report)
		}
	}
}

// The check itself finds what it is there to find.
func TestPlanCheckFindsScans(t *testing.T) {
	c := newPlanChecker(t, openTest(t))
	for q, bad := range map[string]bool{
		`SELECT doc FROM media_files WHERE size = ?`:                             true, // no index on size
		`SELECT f.doc FROM media_files AS f WHERE f.size = ?`:                    true, // the same, through an alias
		`SELECT f.doc FROM media_files f JOIN media_chunks c ON c.data = f.doc`:  true, // an automatic index
		`SELECT doc FROM media_files WHERE id > ? ORDER BY uploaded_ns LIMIT 10`: true, // sorted in a temporary B-tree
		`SELECT type FROM events ORDER BY type LIMIT 5`:                          true, // the walk is not in order
		`DELETE FROM media_chunks WHERE n > ?`:                                   true,
		`SELECT seq FROM events ORDER BY seq DESC LIMIT 1`:                       false,
		`SELECT doc FROM heartbeats ORDER BY last_seen_ns`:                       false, // a small table
		`SELECT file_id FROM media_chunks WHERE n = 0 ORDER BY file_id LIMIT ?`:  false, // a partial index
		`SELECT doc FROM media_files f WHERE f.id = ? ORDER BY f.uploaded_ns`:    false,
		`WITH x AS (SELECT id FROM media_files WHERE id = ?) SELECT id FROM x`:   false,
		`SELECT EXISTS (SELECT 1 FROM media_chunks WHERE file_id = ? AND n = ?)`: false,
	} {
		if got := c.check(q) != ""; got != bad {
			t.Errorf("%s: found a problem: %t, want %t\n%s", q, got, bad, c.check(q))
		}
	}
}

type planChecker struct {
	db              *sql.DB
	tables, partial map[string]bool
}

func newPlanChecker(t *testing.T, s *Store) *planChecker {
	t.Helper()
	c := &planChecker{db: s.wdb, tables: map[string]bool{}, partial: map[string]bool{}}
	rows, err := s.rdb.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE type IN ('table', 'index')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, name, ddl string
		if err := rows.Scan(&typ, &name, &ddl); err != nil {
			t.Fatal(err)
		}
		if typ == "table" {
			c.tables[name] = true
		} else if sqlWhere.MatchString(ddl) {
			c.partial[name] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// check is what is wrong with q's plan, with q and the plan; "" when
// nothing is.
func (c *planChecker) check(q string) string {
	plan, err := explain(c.db, q)
	if err != nil {
		return fmt.Sprintf("EXPLAIN QUERY PLAN failed: %v\n\t%s", err, q)
	}
	aliases, ctes := map[string]string{}, map[string]bool{}
	for _, m := range sqlAlias.FindAllStringSubmatch(q, -1) {
		if c.tables[m[1]] && !notAlias[strings.ToUpper(m[2])] {
			aliases[m[2]] = m[1]
		}
	}
	for _, m := range sqlCTE.FindAllStringSubmatch(q, -1) {
		ctes[m[1]] = true
	}
	// No WHERE, in order, to a limit: the scan stops at the limit (an
	// aggregate's LIMIT would limit its result, not the rows read).
	orderedWalk := !sqlWhere.MatchString(q) && sqlLimit.MatchString(q) && sqlOrderBy.MatchString(q) && !sqlAggr.MatchString(q)
	growingUnder := map[int]string{} // plan line -> a growing table read under it
	var problems []string
	for _, l := range plan {
		m := planScan.FindStringSubmatch(l.detail)
		if m == nil {
			if strings.HasPrefix(l.detail, "BLOOM FILTER") {
				problems = append(problems, fmt.Sprintf("%q: a Bloom filter is built by scanning", l.detail))
			}
			continue
		}
		name := m[2]
		table := name
		if a, ok := aliases[name]; ok {
			table = a
		}
		switch {
		case strings.HasPrefix(name, "(") || ctes[name] || strings.Contains(l.detail, "VIRTUAL TABLE") || l.detail == "SCAN CONSTANT ROW":
			continue // a subquery's or CTE's rows, planned on their own lines
		case !c.tables[table]:
			problems = append(problems, fmt.Sprintf("%q: cannot tell which table this is (an alias the test does not understand?)", l.detail))
			continue
		case smallTables[table] != "":
			continue
		}
		growingUnder[l.parent] = table
		idx := planIndex.FindStringSubmatch(l.detail)
		switch {
		case strings.Contains(l.detail, "AUTOMATIC"):
			problems = append(problems, fmt.Sprintf("%q: an automatic index is built by scanning %s", l.detail, table))
		case m[1] == "SEARCH":
		case idx != nil && c.partial[idx[1]]:
		case orderedWalk:
		default:
			problems = append(problems, fmt.Sprintf("%q: a scan of %s, which grows", l.detail, table))
		}
	}
	for _, l := range plan {
		if planOrderBy.MatchString(l.detail) && growingUnder[l.parent] != "" {
			problems = append(problems, fmt.Sprintf("%q: rows of %s, which grows, are sorted for ORDER BY", l.detail, growingUnder[l.parent]))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("statement\n\t%s\nplan\n%s%s", q, formatPlan(plan), strings.Join(problems, "\n"))
}

type planLine struct {
	id, parent int
	detail     string
}

// explain is the query plan of q, run with a NULL for every parameter.
func explain(db *sql.DB, q string) ([]planLine, error) {
	args := make([]any, 0, 64)
	for range 64 { // unused positions are not bound
		args = append(args, nil)
	}
	for _, name := range sqlNamed.FindAllString(q, -1) {
		args = append(args, sql.Named(name[1:], nil))
	}
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var plan []planLine
	for rows.Next() {
		var l planLine
		var unused int
		if err := rows.Scan(&l.id, &l.parent, &unused, &l.detail); err != nil {
			return nil, err
		}
		plan = append(plan, l)
	}
	return plan, rows.Err()
}

func formatPlan(plan []planLine) string {
	depth := map[int]int{0: 0}
	var b strings.Builder
	for _, l := range plan {
		depth[l.id] = depth[l.parent] + 1
		fmt.Fprintf(&b, "\t%s%s\n", strings.Repeat("  ", depth[l.id]-1), l.detail)
	}
	return b.String()
}
