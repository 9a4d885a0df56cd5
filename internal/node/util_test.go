package node

import (
	"os"

	"github.com/hansa-chain/hansa/internal/storage"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func storageOpen(cfg Config) (*storage.DB, error) {
	return storage.OpenPebble(cfg.DataDir, cfg.Storage)
}
