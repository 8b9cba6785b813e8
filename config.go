package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/tenantql/tenantql/tenancy"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/resolvers"
)

// maxConnsPerTenant is the highest MAX_DB_CONNECTIONS_PER_TENANT: the
// tenant roles' CONNECTION LIMIT less one LISTEN connection.
const maxConnsPerTenant = tenancy.DefaultRoleConnLimit - 1

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
	TrustedProxies   string // TRUSTED_PROXIES: addresses/CIDRs whose forwarded headers count ("" with TrustProxy: every peer)
	CORSOrigins      []string
	MaxDBConnections int
	MaxConnsTenant   int
	MaxListenConns   int           // MAX_LISTEN_CONNECTIONS: tenants followed for subscriptions at once, one LISTEN connection each, within MAX_DB_CONNECTIONS (default a quarter of it, at least 1)
	DBIdleTimeout    time.Duration // DB_IDLE_TIMEOUT_SECONDS: a tenant connection idle this long is closed (default 30)
	Introspection    bool
	FieldSuggestions bool // "Did you mean ...?" hints in validation errors
	LogLevel         slog.Level
	LogFormat        string // "text" or "json"
	ShutdownTimeout  time.Duration
	NamePrefix       string        // TENANT_NAME_PREFIX: start of tenant database and role names
	Failpoint        string        // TENANTQL_FAILPOINT, tests only
	SpareTenants     int           // SPARE_TENANTS: spare tenant databases kept ready
	TenantTemplate   bool          // TENANT_TEMPLATE: clone tenant databases from a migrated template
	PprofAddr        string        // PPROF_ADDR: serve net/http/pprof there (profiling only); "" = off
	Tracing          TracingConfig // OTEL_*: OpenTelemetry traces, off unless an OTLP endpoint is set (tracing.go)
	UserCacheTTL     time.Duration // USER_CACHE_SECONDS: users, once read, remembered this long (default 5); 0 = off
	DeleteGrace      time.Duration // DELETE_GRACE_HOURS: a deleted tenant stays restorable this long (default 72); 0 = purged at once
	// Provisioner: PROVISION_LEASE_SECONDS (default 60), PROVISION_MAX_ATTEMPTS
	// (default 5), PROVISION_BACKOFF_MS (first retry delay, default 1000).
	ProvisionLease       time.Duration
	ProvisionMaxAttempts int
	ProvisionBackoff     time.Duration

	// The GraphQL edge's limits (docs/limits.md).
	Limits         resolvers.Limits // MAX_TOKENS, MAX_DEPTH, MAX_ALIASES, MAX_DIRECTIVES_PER_FIELD, MAX_COMPLEXITY
	MaxBodyBytes   int64            // MAX_BODY_BYTES
	RateLimitRPS   float64          // RATE_LIMIT_RPS: per tenant (and admin host); 0 turns it off
	RateLimitBurst int              // RATE_LIMIT_BURST
	// Per-client buckets under the tenant's (edge.Options): per signed-in
	// user RATE_LIMIT_USER_RPS/_BURST (default the tenant's), per client
	// address without a token RATE_LIMIT_ADDRESS_RPS/_BURST (a quarter),
	// all calls without a token RATE_LIMIT_ANONYMOUS_RPS/_BURST (half);
	// RATE_LIMIT_CLIENT_BUCKETS of them kept at most.
	RateLimitUserRPS        float64
	RateLimitUserBurst      int
	RateLimitAddressRPS     float64
	RateLimitAddressBurst   int
	RateLimitAnonymousRPS   float64
	RateLimitAnonymousBurst int
	RateLimitClientBuckets  int
	// Failed logins (auth.LoginThrottle): LOGIN_FREE_FAILURES per account,
	// LOGIN_FREE_FAILURES_PER_ADDRESS per client address (of a tenant),
	// then waits doubling from a second up to LOGIN_MAX_BACKOFF_SECONDS.
	LoginFreeFailures           int
	LoginFreeFailuresPerAddress int
	LoginMaxBackoff             time.Duration
	WSMaxPerTenant              int           // WS_MAX_CONNECTIONS_PER_TENANT
	WSInitTimeout               time.Duration // WS_INIT_TIMEOUT_SECONDS
	WSKeepAlive                 time.Duration // WS_KEEPALIVE_SECONDS
	WSMaxInFlight               int           // WS_MAX_OPERATIONS_IN_FLIGHT: per websocket
	WSAnonymousIdle             time.Duration // WS_ANONYMOUS_IDLE_SECONDS: a socket without a valid token is closed once idle this long
	APQTenants                  int           // APQ_CACHE_TENANTS
	APQBytesPerTenant           int           // APQ_CACHE_BYTES_PER_TENANT
	ReadHeaderTimeout           time.Duration // HTTP_READ_HEADER_TIMEOUT_SECONDS
	ReadTimeout                 time.Duration // HTTP_READ_TIMEOUT_SECONDS
	WriteTimeout                time.Duration // HTTP_WRITE_TIMEOUT_SECONDS (websockets are not affected)
	IdleTimeout                 time.Duration // HTTP_IDLE_TIMEOUT_SECONDS

	// SecretKeyPrevious (SECRET_KEY_PREVIOUS) is the key SECRET_KEY
	// replaced: tokens and sealed passwords of it are still accepted, so
	// that `tenantql rotate-secret` can re-seal them while every replica
	// serves.
	SecretKeyPrevious string
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
	c.SecretKeyPrevious = getenv("SECRET_KEY_PREVIOUS")
	c.AdminHost = strings.TrimSuffix(strings.ToLower(orDefault(getenv("ADMIN_HOST"), c.BaseDomain)), ".")
	var err error
	c.TrustedProxies = getenv("TRUSTED_PROXIES")
	if _, err := edge.ParseProxies(c.TrustedProxies, false); err != nil {
		return c, err
	}
	if c.TrustProxy, err = parseBool(getenv, "TRUST_PROXY", false); err != nil {
		return c, err
	}
	// with a list, forwarded headers count from its peers only (edge.Proxies
	// drops them from any other); without, TRUST_PROXY believes every peer
	c.TrustProxy = c.TrustProxy || strings.TrimSpace(c.TrustedProxies) != ""
	if c.Introspection, err = parseBool(getenv, "INTROSPECTION", c.Dev()); err != nil {
		return c, err
	}
	if c.FieldSuggestions, err = parseBool(getenv, "FIELD_SUGGESTIONS", c.Dev()); err != nil {
		return c, err
	}
	if err := c.loadEdge(getenv); err != nil {
		return c, err
	}
	if c.MaxDBConnections, err = parseInt(getenv, "MAX_DB_CONNECTIONS", 64); err != nil {
		return c, err
	}
	if c.MaxConnsTenant, err = parseInt(getenv, "MAX_DB_CONNECTIONS_PER_TENANT", min(8, c.MaxDBConnections)); err != nil {
		return c, err
	}
	if c.MaxListenConns, err = parseInt(getenv, "MAX_LISTEN_CONNECTIONS", max(1, c.MaxDBConnections/4)); err != nil {
		return c, err
	}
	idleSecs, err := parseInt(getenv, "DB_IDLE_TIMEOUT_SECONDS", 30)
	if err != nil || idleSecs <= 0 {
		return c, fmt.Errorf("DB_IDLE_TIMEOUT_SECONDS: want seconds (at least 1), got %q", getenv("DB_IDLE_TIMEOUT_SECONDS"))
	}
	c.DBIdleTimeout = time.Duration(idleSecs) * time.Second
	if c.SpareTenants, err = parseInt(getenv, "SPARE_TENANTS", 2); err != nil {
		return c, err
	}
	if c.TenantTemplate, err = parseBool(getenv, "TENANT_TEMPLATE", true); err != nil {
		return c, err
	}
	c.PprofAddr = getenv("PPROF_ADDR")
	userSecs, err := parseInt(getenv, "USER_CACHE_SECONDS", 5)
	if err != nil || userSecs < 0 {
		return c, fmt.Errorf("USER_CACHE_SECONDS: want seconds (0 turns the cache off), got %q", getenv("USER_CACHE_SECONDS"))
	}
	c.UserCacheTTL = time.Duration(userSecs) * time.Second
	graceHours := 72.0
	if v := getenv("DELETE_GRACE_HOURS"); v != "" {
		if graceHours, err = strconv.ParseFloat(v, 64); err != nil || graceHours < 0 || graceHours > 24*3650 {
			return c, fmt.Errorf("DELETE_GRACE_HOURS: want hours (0 drops a deleted tenant at once), got %q", v)
		}
	}
	c.DeleteGrace = time.Duration(graceHours * float64(time.Hour))
	if c.SpareTenants < 0 {
		return c, errors.New("SPARE_TENANTS must be 0 (no spares) or more")
	}
	secs, err := parseInt(getenv, "SHUTDOWN_TIMEOUT_SECONDS", 25)
	if err != nil {
		return c, err
	}
	c.ShutdownTimeout = time.Duration(secs) * time.Second
	if secs, err = parseInt(getenv, "PROVISION_LEASE_SECONDS", 60); err != nil {
		return c, err
	}
	c.ProvisionLease = time.Duration(secs) * time.Second
	if c.ProvisionMaxAttempts, err = parseInt(getenv, "PROVISION_MAX_ATTEMPTS", 5); err != nil {
		return c, err
	}
	ms, err := parseInt(getenv, "PROVISION_BACKOFF_MS", 1000)
	if err != nil {
		return c, err
	}
	c.ProvisionBackoff = time.Duration(ms) * time.Millisecond
	if c.ProvisionLease < time.Second || c.ProvisionMaxAttempts < 1 || c.ProvisionBackoff < time.Millisecond {
		return c, errors.New("PROVISION_LEASE_SECONDS, PROVISION_MAX_ATTEMPTS and PROVISION_BACKOFF_MS must be positive")
	}
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
	// Tenant roles have a CONNECTION LIMIT (tenancy.DefaultRoleConnLimit):
	// a pool above it, with a LISTEN connection beside it, would be refused
	// by PostgreSQL (53300) instead of waiting in the pool.
	if c.MaxConnsTenant > maxConnsPerTenant {
		return c, fmt.Errorf("MAX_DB_CONNECTIONS_PER_TENANT must be at most %d (tenant roles may open %d connections, one of them for subscriptions)", maxConnsPerTenant, tenancy.DefaultRoleConnLimit)
	}
	if c.MaxListenConns < 1 || c.MaxListenConns >= c.MaxDBConnections && c.MaxDBConnections > 1 {
		return c, errors.New("MAX_LISTEN_CONNECTIONS must be at least 1 and less than MAX_DB_CONNECTIONS (its connections come out of that budget)")
	}
	if !c.Dev() {
		if c.AdminToken == "" {
			return c, errors.New("ADMIN_TOKEN is required when DATABASE_URL is set")
		}
		if len(c.AdminToken) < minAdminToken {
			return c, fmt.Errorf("ADMIN_TOKEN must be at least %d characters when DATABASE_URL is set (it has %d): make one with 'openssl rand -hex 32'",
				minAdminToken, len(c.AdminToken))
		}
		if len(c.SecretKey) < 32 {
			return c, errors.New("SECRET_KEY of at least 32 characters is required when DATABASE_URL is set")
		}
	}
	if c.SecretKeyPrevious != "" {
		if len(c.SecretKeyPrevious) < 32 {
			return c, errors.New("SECRET_KEY_PREVIOUS must be at least 32 characters (the SECRET_KEY it replaced)")
		}
		if c.SecretKeyPrevious == c.SecretKey {
			return c, errors.New("SECRET_KEY_PREVIOUS is the same as SECRET_KEY: set SECRET_KEY to the new key and SECRET_KEY_PREVIOUS to the old one")
		}
	}
	if c.Tracing, err = loadTracingConfig(getenv); err != nil {
		return c, err
	}
	return c, nil
}

// loadEdge reads the limits of the GraphQL edge, with their defaults, and
// checks them: every limit, timeout and size must be at least 1 (the rate
// limit may be 0: off).
func (c *Config) loadEdge(getenv func(string) string) error {
	ints := []struct {
		dst  *int
		name string
		def  int
	}{
		{&c.Limits.MaxTokens, "MAX_TOKENS", resolvers.DefaultMaxTokens},
		{&c.Limits.MaxDepth, "MAX_DEPTH", resolvers.DefaultMaxDepth},
		{&c.Limits.MaxAliases, "MAX_ALIASES", resolvers.DefaultMaxAliases},
		{&c.Limits.MaxDirectivesPerField, "MAX_DIRECTIVES_PER_FIELD", resolvers.DefaultMaxDirectivesPerField},
		{&c.Limits.MaxComplexity, "MAX_COMPLEXITY", resolvers.DefaultMaxComplexity},
		{&c.WSMaxPerTenant, "WS_MAX_CONNECTIONS_PER_TENANT", 500},
		{&c.WSMaxInFlight, "WS_MAX_OPERATIONS_IN_FLIGHT", resolvers.DefaultWSMaxInFlight},
		{&c.LoginFreeFailures, "LOGIN_FREE_FAILURES", auth.DefaultFreeFailuresPerEmail},
		{&c.LoginFreeFailuresPerAddress, "LOGIN_FREE_FAILURES_PER_ADDRESS", auth.DefaultFreeFailuresPerAddress},
		{&c.APQTenants, "APQ_CACHE_TENANTS", resolvers.DefaultAPQTenants},
		{&c.APQBytesPerTenant, "APQ_CACHE_BYTES_PER_TENANT", resolvers.DefaultAPQBytes},
	}
	for _, v := range ints {
		n, err := parseInt(getenv, v.name, v.def)
		if err != nil {
			return err
		}
		if n < 1 || n > 1_000_000_000 {
			return fmt.Errorf("%s: want 1 to 1000000000, got %d", v.name, n)
		}
		*v.dst = n
	}
	body, err := parseInt(getenv, "MAX_BODY_BYTES", edge.DefaultMaxBodyBytes)
	if err != nil {
		return err
	}
	if body < 1 {
		return fmt.Errorf("MAX_BODY_BYTES: want a positive number of bytes, got %d", body)
	}
	c.MaxBodyBytes = int64(body)

	if c.RateLimitRPS, c.RateLimitBurst, err = parseRate(getenv, "RATE_LIMIT", 100, -1, true); err != nil {
		return err
	}
	if c.RateLimitUserRPS, c.RateLimitUserBurst, err = parseRate(getenv, "RATE_LIMIT_USER",
		c.RateLimitRPS, c.RateLimitBurst, false); err != nil {
		return err
	}
	if c.RateLimitAddressRPS, c.RateLimitAddressBurst, err = parseRate(getenv, "RATE_LIMIT_ADDRESS",
		c.RateLimitRPS/4, max(1, c.RateLimitBurst/4), false); err != nil {
		return err
	}
	if c.RateLimitAnonymousRPS, c.RateLimitAnonymousBurst, err = parseRate(getenv, "RATE_LIMIT_ANONYMOUS",
		c.RateLimitRPS/2, max(1, c.RateLimitBurst/2), false); err != nil {
		return err
	}
	if c.RateLimitClientBuckets, err = parseInt(getenv, "RATE_LIMIT_CLIENT_BUCKETS", edge.DefaultClientBuckets); err != nil {
		return err
	}
	if c.RateLimitClientBuckets < 1 {
		return fmt.Errorf("RATE_LIMIT_CLIENT_BUCKETS: want at least 1, got %d", c.RateLimitClientBuckets)
	}

	durations := []struct {
		dst  *time.Duration
		name string
		def  time.Duration
	}{
		{&c.WSInitTimeout, "WS_INIT_TIMEOUT_SECONDS", resolvers.DefaultWSInitTimeout},
		{&c.WSKeepAlive, "WS_KEEPALIVE_SECONDS", resolvers.DefaultWSKeepAlive},
		{&c.WSAnonymousIdle, "WS_ANONYMOUS_IDLE_SECONDS", resolvers.DefaultWSAnonymousIdle},
		{&c.LoginMaxBackoff, "LOGIN_MAX_BACKOFF_SECONDS", auth.DefaultMaxLoginBackoff},
		{&c.ReadHeaderTimeout, "HTTP_READ_HEADER_TIMEOUT_SECONDS", 10 * time.Second},
		{&c.ReadTimeout, "HTTP_READ_TIMEOUT_SECONDS", 30 * time.Second},
		{&c.WriteTimeout, "HTTP_WRITE_TIMEOUT_SECONDS", 60 * time.Second},
		{&c.IdleTimeout, "HTTP_IDLE_TIMEOUT_SECONDS", 120 * time.Second},
	}
	for _, d := range durations {
		secs, err := parseInt(getenv, d.name, int(d.def/time.Second))
		if err != nil {
			return err
		}
		if secs < 1 || secs > 86400 {
			return fmt.Errorf("%s: want 1 to 86400 seconds, got %d", d.name, secs)
		}
		*d.dst = time.Duration(secs) * time.Second
	}
	return nil
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
		db = maskURL(c.DatabaseURL)
	}
	return slog.GroupValue(
		slog.String("database", db), slog.String("data_dir", c.DataDir), slog.String("listen", c.ListenAddr),
		slog.String("base_domain", c.BaseDomain), slog.String("admin_host", c.AdminHost),
		slog.String("admin_token", mask(c.AdminToken)), slog.String("secret_key", mask(c.SecretKey)),
		slog.String("secret_key_previous", mask(c.SecretKeyPrevious)),
		slog.Bool("trust_proxy", c.TrustProxy), slog.String("trusted_proxies", c.TrustedProxies), slog.Any("cors_origins", c.CORSOrigins),
		slog.Int("max_db_connections", c.MaxDBConnections), slog.Int("max_db_connections_per_tenant", c.MaxConnsTenant),
		slog.Duration("db_idle_timeout", c.DBIdleTimeout),
		slog.Bool("introspection", c.Introspection), slog.Bool("field_suggestions", c.FieldSuggestions),
		slog.Any("limits", c.Limits), slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Float64("rate_limit_rps", c.RateLimitRPS), slog.Int("rate_limit_burst", c.RateLimitBurst),
		slog.Float64("rate_limit_user_rps", c.RateLimitUserRPS), slog.Int("rate_limit_user_burst", c.RateLimitUserBurst),
		slog.Float64("rate_limit_address_rps", c.RateLimitAddressRPS), slog.Int("rate_limit_address_burst", c.RateLimitAddressBurst),
		slog.Float64("rate_limit_anonymous_rps", c.RateLimitAnonymousRPS), slog.Int("rate_limit_anonymous_burst", c.RateLimitAnonymousBurst),
		slog.Int("ws_max_connections_per_tenant", c.WSMaxPerTenant), slog.Int("ws_max_operations_in_flight", c.WSMaxInFlight),
		slog.Duration("ws_anonymous_idle", c.WSAnonymousIdle),
		slog.Int("login_free_failures", c.LoginFreeFailures), slog.Int("login_free_failures_per_address", c.LoginFreeFailuresPerAddress),
		slog.Duration("login_max_backoff", c.LoginMaxBackoff),
		slog.Int("spare_tenants", c.SpareTenants), slog.Bool("tenant_template", c.TenantTemplate),
		slog.Duration("provision_lease", c.ProvisionLease), slog.Int("provision_max_attempts", c.ProvisionMaxAttempts),
		slog.Duration("provision_backoff", c.ProvisionBackoff), slog.Duration("user_cache_ttl", c.UserCacheTTL),
		slog.Duration("delete_grace", c.DeleteGrace), slog.Bool("tracing", c.Tracing.Enabled),
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

// parseRate reads NAME_RPS and NAME_BURST, a token bucket's rate and size,
// with their defaults (defBurst < 0: twice the rate, at least 1). A rate of
// 0 is accepted only where it turns the limit off (zeroIsOff).
func parseRate(getenv func(string) string, name string, defRPS float64, defBurst int, zeroIsOff bool) (rps float64, burst int, err error) {
	rps = defRPS
	if v := getenv(name + "_RPS"); v != "" {
		rps, err = strconv.ParseFloat(v, 64)
		if err != nil || rps < 0 || rps == 0 && !zeroIsOff || math.IsInf(rps, 0) || math.IsNaN(rps) {
			if zeroIsOff {
				return 0, 0, fmt.Errorf("%s_RPS: want requests per second (0 turns the limit off), got %q", name, v)
			}
			return 0, 0, fmt.Errorf("%s_RPS: want requests per second, more than 0, got %q", name, v)
		}
	}
	if defBurst < 0 {
		defBurst = max(1, int(2*rps))
	}
	if burst, err = parseInt(getenv, name+"_BURST", defBurst); err != nil {
		return 0, 0, err
	}
	if burst < 1 {
		return 0, 0, fmt.Errorf("%s_BURST: want at least 1, got %d", name, burst)
	}
	return rps, burst, nil
}

// minAdminToken is the shortest ADMIN_TOKEN accepted outside development
// mode: 32 characters, as many as SECRET_KEY.
const minAdminToken = 32

// maskURL returns a connection URL fit for logs: the password of its user
// and the value of every query parameter that may carry a credential
// (password, sslpassword, sslkey, passfile, and any name with "password",
// "secret" or "token" in it) are "****". A URL that does not parse is
// "****" whole.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "****"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "****")
	}
	q := u.Query()
	masked := false
	for k := range q {
		lk := strings.ToLower(k)
		if lk == "sslkey" || lk == "passfile" || strings.Contains(lk, "password") ||
			strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
			q[k] = []string{"****"}
			masked = true
		}
	}
	if masked {
		u.RawQuery = strings.ReplaceAll(q.Encode(), "%2A%2A%2A%2A", "****")
	}
	return strings.ReplaceAll(u.String(), "%2A%2A%2A%2A", "****")
}
