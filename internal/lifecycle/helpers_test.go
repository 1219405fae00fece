package lifecycle_test

import "gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"

func tokenSecret(s string) token.Secret { return token.Secret(s) }
