package token

import (
	"encoding/json"
	"fmt"
)

func fmtS(f string, v any) string { return fmt.Sprintf(f, v) }

func jsonS(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
