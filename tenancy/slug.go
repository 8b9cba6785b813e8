package tenancy

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,38}[a-z0-9]$`)

// reservedSlugs cannot be tenants: they name the platform's own hosts or
// would confuse users and mail.
var reservedSlugs = map[string]bool{
	"admin": true, "api": true, "app": true, "www": true, "mail": true, "smtp": true,
	"ftp": true, "static": true, "assets": true, "cdn": true, "docs": true, "help": true,
	"status": true, "support": true, "blog": true, "dashboard": true, "console": true,
	"platform": true, "graphql": true, "playground": true, "login": true, "auth": true,
	"account": true, "accounts": true, "billing": true, "root": true, "system": true,
	"postgres": true, "template": true, "tenantql": true, "localhost": true, "ns1": true, "ns2": true,
}

// ValidateSlug returns an ErrInvalidInput error unless s matches
// ^[a-z][a-z0-9-]{1,38}[a-z0-9]$, has no "--" and is not reserved.
func ValidateSlug(s string) error {
	if !slugPattern.MatchString(s) {
		return invalid("slug must be 3 to 40 characters: a lower-case letter, then lower-case letters, digits or hyphens, ending in a letter or digit")
	}
	if strings.Contains(s, "--") {
		return invalid("slug must not contain two hyphens in a row")
	}
	if reservedSlugs[s] {
		return invalid("slug %q is reserved", s)
	}
	return nil
}

// SlugFromName derives a slug from an organization's display name:
// accents dropped, lower-cased, other characters turned into single hyphens,
// cut to 40 bytes. The result still has to pass ValidateSlug.
func SlugFromName(name string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range norm.NFKD.String(name) {
		switch {
		case unicode.Is(unicode.Mn, r): // combining accent
			continue
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			b.WriteRune(unicode.ToLower(r))
		default:
			hyphen = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := b.String()
	if len(s) > 40 {
		s = s[:40]
	}
	s = strings.Trim(s, "-")
	// a slug starts with a letter
	s = strings.TrimLeftFunc(s, func(r rune) bool { return r < 'a' || r > 'z' })
	return strings.Trim(s, "-")
}

// ValidateName checks an organization display name: 1..100 bytes after
// trimming, valid UTF-8, no control characters.
func ValidateName(name string) error {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return invalid("organization name must not be empty")
	case len(n) > 100:
		return invalid("organization name must be at most 100 bytes")
	case !utf8.ValidString(n):
		return invalid("organization name must be valid UTF-8")
	case strings.ContainsFunc(n, unicode.IsControl):
		return invalid("organization name must not contain control characters")
	}
	return nil
}

// ValidateDomain checks a custom domain (already normalized): a valid DNS
// name with at least two labels, at most 253 bytes, not under baseDomain
// and not the admin host.
func ValidateDomain(domain string, hosts Hosts) error {
	if !validHostname(domain) || !strings.Contains(domain, ".") {
		return invalid("domain must be a valid host name such as issues.example.org")
	}
	if kind, _ := hosts.Classify(domain); kind != HostCustom {
		return invalid("domain must not be the admin host or a name under the base domain")
	}
	return nil
}
