package token

import "github.com/sirupsen/logrus"

// Formatter wraps a logrus formatter and redacts the formatted line, so that message,
// fields and errors are all covered whatever a caller logs.
type Formatter struct {
	Inner    logrus.Formatter
	Redactor *Redactor
}

// Format implements logrus.Formatter.
func (f *Formatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.Inner.Format(e)
	if err != nil {
		return nil, err
	}
	return []byte(f.Redactor.Redact(string(b))), nil
}
