package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hansa-chain/hansa/internal/gateway"
	"github.com/hansa-chain/hansa/internal/telemetry"
)

// gatewayFlags are the flags that override a gateway's config file.
type gatewayFlags struct {
	config, http, ops, admin, stateFile, logLevel, logFormat *string
}

func addGatewayFlags(fs *flag.FlagSet) *gatewayFlags {
	return &gatewayFlags{
		config:    fs.String("config", "", "TOML config file (re-read on SIGHUP)"),
		http:      fs.String("http", "", "JSON-RPC listen address (overrides the config)"),
		ops:       fs.String("ops", "", "metrics/healthz/readyz listen address (overrides the config)"),
		admin:     fs.String("admin", "", "admin API listen address (overrides the config; keep on loopback)"),
		stateFile: fs.String("state-file", "", "file persisting upstreams added through the admin API (overrides the config)"),
		logLevel:  fs.String("log-level", "", "debug, info, warn or error (overrides the config)"),
		logFormat: fs.String("log-format", "", "text or json (overrides the config)"),
	}
}

// load reads the config file (if any), applies the flag overrides and
// validates the result.
func (f *gatewayFlags) load() (gateway.Config, error) {
	cfg := gateway.DefaultConfig()
	if *f.config != "" {
		var err error
		if cfg, err = gateway.LoadConfig(*f.config); err != nil {
			return cfg, err
		}
	}
	override(map[*string]string{
		&cfg.HTTPAddr: *f.http, &cfg.OpsAddr: *f.ops, &cfg.AdminAddr: *f.admin, &cfg.StateFile: *f.stateFile,
		&cfg.Log.Level: *f.logLevel, &cfg.Log.Format: *f.logFormat,
	})
	return cfg, cfg.Validate()
}

// runGateway runs "hansa gateway": the health-aware JSON-RPC gateway, until
// ctx ends. SIGHUP re-reads the config file; an invalid file keeps the
// running config and logs an error.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr)
	flags := addGatewayFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := flags.load()
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	g, err := gateway.New(cfg, logger, telemetry.NewRegistry())
	if err != nil {
		return err
	}
	logger.Info("gateway config", "http_addr", cfg.HTTPAddr, "ops_addr", cfg.OpsAddr, "admin_addr", cfg.AdminAddr,
		"state_file", cfg.StateFile, "chain_id", cfg.ChainID, "upstreams", len(cfg.Upstreams), "keys", len(cfg.Keys),
		"allow_anonymous", cfg.AllowAnonymous, "poll_interval", cfg.Health.PollInterval.Std(), "max_lag", cfg.Health.MaxLag,
		"membership_admin_urls", cfg.Membership.AdminURLs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	wg.Go(func() { reloadOnHUP(ctx, hup, flags, g, logger) })
	err = g.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// reloadOnHUP re-reads the config on each signal until ctx ends.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, flags *gatewayFlags, g *gateway.Gateway, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			cfg, err := flags.load()
			if err == nil {
				err = g.Reload(cfg)
			}
			if err != nil {
				logger.Error("config reload failed; keeping the running config", "err", err)
			}
		}
	}
}
