package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFormat is the version of the state file's layout.
const stateFormat = 1

// stateFile is the persisted state: the upstreams added through the admin
// API.
type stateFile struct {
	Format    int              `json:"format"`
	Upstreams []UpstreamConfig `json:"upstreams"`
}

// stateStore persists the admin API's upstreams in one small JSON file,
// replaced atomically (write a temporary file, fsync, rename, fsync the
// directory), so a crash leaves either the old or the new list. An empty
// path keeps nothing. Callers serialise save.
type stateStore struct {
	path string
}

func (s *stateStore) load() ([]UpstreamConfig, error) {
	if s.path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: read state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("gateway: state file %s: %w", s.path, err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("gateway: state file %s: format %d, want %d", s.path, st.Format, stateFormat)
	}
	for i := range st.Upstreams {
		if err := st.Upstreams[i].Validate(); err != nil {
			return nil, fmt.Errorf("gateway: state file %s: %w", s.path, err)
		}
	}
	return st.Upstreams, nil
}

func (s *stateStore) save(ups []UpstreamConfig) error {
	if s.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(stateFile{Format: stateFormat, Upstreams: ups}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gateway: save state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".gateway-state-*")
	if err != nil {
		return fmt.Errorf("gateway: save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("gateway: save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("gateway: save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gateway: save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("gateway: save state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
