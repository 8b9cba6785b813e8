package store

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits, in bytes of UTF-8.
const (
	maxNameLen        = 100
	maxEmailLen       = 254
	maxTitleLen       = 200
	maxDescriptionLen = 20000
	maxBodyLen        = 10000
	maxHashLen        = 1024
)

// checkText refuses s unless it is valid UTF-8 without NUL bytes and
// min..max bytes long. singleLine also refuses control characters
// (newlines, tabs, escapes). what names the field in the message.
func checkText(what, s string, minLen, maxLen int, singleLine bool) error {
	if !utf8.ValidString(s) {
		return invalid("%s must be valid UTF-8", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid("%s must not contain NUL bytes", what)
	}
	if singleLine && strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalid("%s must not contain control characters or line breaks", what)
	}
	if len(s) < minLen || len(s) > maxLen {
		if minLen == 0 {
			return invalid("%s must be at most %d bytes", what, maxLen)
		}
		return invalid("%s must be %d to %d bytes", what, minLen, maxLen)
	}
	return nil
}

// normalizeName trims a person's or project's name and checks it:
// 1 to 100 bytes, one line.
func normalizeName(what, s string) (string, error) {
	s = strings.TrimSpace(s)
	return s, checkText(what, s, 1, maxNameLen, true)
}

// normalizeTitle trims an issue title and checks it: 1 to 200 bytes, one line.
func normalizeTitle(s string) (string, error) {
	s = strings.TrimSpace(s)
	return s, checkText("title", s, 1, maxTitleLen, true)
}

// checkDescription checks an issue description: at most 20000 bytes; it is
// kept exactly as given (it may be empty and span lines).
func checkDescription(s string) error {
	return checkText("description", s, 0, maxDescriptionLen, false)
}

// checkBody checks a comment body: 1 to 10000 bytes, not only white space;
// it is kept exactly as given.
func checkBody(s string) error {
	if err := checkText("body", s, 1, maxBodyLen, false); err != nil {
		return err
	}
	if strings.TrimSpace(s) == "" {
		return invalid("body must not be blank")
	}
	return nil
}

// checkPasswordHash checks that a password hash was given: 1 to 1024 bytes, one line.
func checkPasswordHash(s string) error {
	return checkText("password hash", s, 1, maxHashLen, true)
}

// validProjectKey reports whether key matches ^[A-Z][A-Z0-9]{1,9}$.
func validProjectKey(key string) bool {
	if len(key) < 2 || len(key) > 10 || key[0] < 'A' || key[0] > 'Z' {
		return false
	}
	for i := 1; i < len(key); i++ {
		if c := key[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkProjectKey refuses a key that does not match ^[A-Z][A-Z0-9]{1,9}$.
func checkProjectKey(key string) error {
	if !validProjectKey(key) {
		return invalid("project key must be 2 to 10 capital letters or digits, starting with a letter")
	}
	return nil
}

// normalizeEmail trims an email address and checks it with a simple, sane
// test: local@domain, at most 254 bytes, one @, no spaces, control
// characters or the special characters <>()[]\,;:", no empty parts around
// dots, a domain with at least two labels of at most 63 bytes. Case is kept;
// emails are compared lower-cased by the database.
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !validEmail(s) {
		return s, invalid("email must be a valid address of at most %d bytes, like name@example.com", maxEmailLen)
	}
	return s, nil
}

func validEmail(s string) bool {
	if len(s) < 3 || len(s) > maxEmailLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>()[]\,;:"`, r) {
			return false
		}
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") || len(local) > 64 || len(domain) > 253 {
		return false
	}
	if !dotted(local, 1) || !dotted(domain, 2) {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// dotted reports whether s is at least minParts non-empty parts joined by dots.
func dotted(s string, minParts int) bool {
	parts := strings.Split(s, ".")
	if len(parts) < minParts {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	return true
}
