package token

// Secret holds a token value. It prints as [REDACTED] with every fmt verb and in JSON, so a
// secret that reaches a log line or an output struct by mistake still does not leak; only
// Reveal gives the value, for the one place that sends it to GitLab.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "[REDACTED]" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return "[REDACTED]" }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, TOML, logrus text).
func (Secret) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }

// Reveal returns the token value.
func (s Secret) Reveal() string { return string(s) }
