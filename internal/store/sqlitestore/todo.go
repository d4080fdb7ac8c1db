package sqlitestore

import "errors"

var errTodo = errors.New("store: not written yet on SQLite")
