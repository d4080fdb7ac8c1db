package sqlitestore

import (
	"app/internal/store"
	"context"
	"io"
	"time"
)

// Not yet written: the media part of the store (delete this file when done).

func (s *Store) PutMedia(ctx context.Context, name, contentType string, data io.Reader) (string, error) {
	return "", errTodo
}

func (s *Store) PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error) {
	return "", errTodo
}

func (s *Store) Media(ctx context.Context, id string) ([]byte, error) { return nil, errTodo }

func (s *Store) OpenMedia(ctx context.Context, id string) (store.MediaInfo, io.ReadCloser, error) {
	return store.MediaInfo{}, nil, errTodo
}

func (s *Store) MediaInfo(ctx context.Context, id string) (store.MediaInfo, error) {
	return store.MediaInfo{}, errTodo
}

func (s *Store) PruneMedia(ctx context.Context, before time.Time) (int, error) { return 0, errTodo }
