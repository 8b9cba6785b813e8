package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything tenantql reads from its environment.
type Config struct {
	DatabaseURL      string // control database; "" = development mode (embedded PostgreSQL)
	DataDir          string
	ListenAddr       string
	BaseDomain       string
	AdminHost        string
	AdminToken       string
	SecretKey        string
	TrustProxy       bool
	CORSOrigins      []string
	MaxDBConnections int
	MaxConnsTenant   int
	Introspection    bool
	LogLevel         slog.Level
	LogFormat        string // "text" or "json"
	ShutdownTimeout  time.Duration
	NamePrefix       string // TENANT_NAME_PREFIX: start of tenant database and role names
	Failpoint        string // TENANTQL_FAILPOINT, tests only
}

// Dev reports whether tenantql runs on its embedded development PostgreSQL.
func (c Config) Dev() bool { return c.DatabaseURL == "" }

// LoadConfig reads the environment through getenv and applies defaults in
// one place. Secrets may still be empty in development mode: devSecrets
// fills them.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		DataDir:     orDefault(getenv("DATA_DIR"), "./.tenantql"),
		ListenAddr:  orDefault(getenv("LISTEN_ADDR"), ":8080"),
		BaseDomain:  strings.TrimSuffix(strings.ToLower(orDefault(getenv("BASE_DOMAIN"), "localhost")), "."),
		AdminToken:  getenv("ADMIN_TOKEN"),
		SecretKey:   getenv("SECRET_KEY"),
		LogFormat:   orDefault(getenv("LOG_FORMAT"), "text"),
		Failpoint:   getenv("TENANTQL_FAILPOINT"),
		NamePrefix:  orDefault(getenv("TENANT_NAME_PREFIX"), "tenant_"),
	}
	c.AdminHost = strings.TrimSuffix(strings.ToLower(orDefault(getenv("ADMIN_HOST"), c.BaseDomain)), ".")
	var err error
	if c.TrustProxy, err = parseBool(getenv, "TRUST_PROXY", false); err != nil {
		return c, err
	}
	if c.Introspection, err = parseBool(getenv, "INTROSPECTION", c.Dev()); err != nil {
		return c, err
	}
	if c.MaxDBConnections, err = parseInt(getenv, "MAX_DB_CONNECTIONS", 64); err != nil {
		return c, err
	}
	if c.MaxConnsTenant, err = parseInt(getenv, "MAX_DB_CONNECTIONS_PER_TENANT", min(8, c.MaxDBConnections)); err != nil {
		return c, err
	}
	secs, err := parseInt(getenv, "SHUTDOWN_TIMEOUT_SECONDS", 25)
	if err != nil {
		return c, err
	}
	c.ShutdownTimeout = time.Duration(secs) * time.Second
	if err := c.LogLevel.UnmarshalText([]byte(orDefault(getenv("LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	for _, o := range strings.Split(getenv("CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
				return c, fmt.Errorf("CORS_ORIGINS: %q is not an origin such as https://app.example.com", o)
			}
			c.CORSOrigins = append(c.CORSOrigins, strings.ToLower(o))
		}
	}
	if c.MaxDBConnections < 1 || c.MaxConnsTenant < 1 || c.MaxConnsTenant > c.MaxDBConnections {
		return c, errors.New("MAX_DB_CONNECTIONS and MAX_DB_CONNECTIONS_PER_TENANT must be positive, the second at most the first")
	}
	if !c.Dev() {
		if c.AdminToken == "" {
			return c, errors.New("ADMIN_TOKEN is required when DATABASE_URL is set")
		}
		if len(c.SecretKey) < 32 {
			return c, errors.New("SECRET_KEY of at least 32 characters is required when DATABASE_URL is set")
		}
	}
	return c, nil
}

// LogValue prints the configuration with secrets masked.
func (c Config) LogValue() slog.Value {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "****"
	}
	db := "embedded"
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "****")
			}
			db = u.Redacted()
		} else {
			db = "****"
		}
	}
	return slog.GroupValue(
		slog.String("database", db), slog.String("data_dir", c.DataDir), slog.String("listen", c.ListenAddr),
		slog.String("base_domain", c.BaseDomain), slog.String("admin_host", c.AdminHost),
		slog.String("admin_token", mask(c.AdminToken)), slog.String("secret_key", mask(c.SecretKey)),
		slog.Bool("trust_proxy", c.TrustProxy), slog.Any("cors_origins", c.CORSOrigins),
		slog.Int("max_db_connections", c.MaxDBConnections), slog.Int("max_db_connections_per_tenant", c.MaxConnsTenant),
		slog.Bool("introspection", c.Introspection),
	)
}

// devSecrets loads the development admin token and secret key from
// DataDir, generating and saving them on first use. Values already set in
// the environment win.
func (c *Config) devSecrets() error {
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return fmt.Errorf("create DATA_DIR: %w", err)
	}
	var err error
	if c.AdminToken == "" {
		if c.AdminToken, err = loadOrCreateSecret(filepath.Join(c.DataDir, "admin-token")); err != nil {
			return err
		}
	}
	if c.SecretKey == "" {
		if c.SecretKey, err = loadOrCreateSecret(filepath.Join(c.DataDir, "secret-key")); err != nil {
			return err
		}
	}
	return nil
}

func loadOrCreateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			return s, nil
		}
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save %s: %w", path, err)
	}
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func parseBool(getenv func(string) string, name string, def bool) (bool, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", name, v)
	}
	return b, nil
}

func parseInt(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: want a whole number, got %q", name, v)
	}
	return n, nil
}
