package gitlabfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// serveControl serves the unauthenticated /-/fake/ endpoints used by scripts
// driving the standalone binary.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/fake/state", func(w http.ResponseWriter, _ *http.Request) {
		writeControl(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("GET /-/fake/seed", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		seeded := s.seed != nil
		s.mu.Unlock()
		if !seeded {
			writeControl(w, http.StatusNotFound, map[string]string{"error": "not seeded"})
			return
		}
		writeControl(w, http.StatusOK, s.Seed())
	})
	mux.HandleFunc("GET /-/fake/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeControl(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /-/fake/faults", s.controlAddFaults)
	mux.HandleFunc("DELETE /-/fake/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /-/fake/requests", func(w http.ResponseWriter, _ *http.Request) {
		writeControl(w, http.StatusOK, s.Requests())
	})
	mux.HandleFunc("DELETE /-/fake/requests", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /-/fake/runners/{id}/rotate", s.withRunner(func(w http.ResponseWriter, _ *http.Request, id int64) {
		writeControl(w, http.StatusOK, map[string]string{"token": s.RotateRunnerTokenAsRunner(id)})
	}))
	mux.HandleFunc("POST /-/fake/runners/{id}/contact", s.withRunner(func(w http.ResponseWriter, r *http.Request, id int64) {
		s.ContactRunner(id, r.URL.Query().Get("system_id"))
		rn, _ := s.Runner(id)
		writeControl(w, http.StatusOK, rn)
	}))
	mux.HandleFunc("POST /-/fake/runners/{id}/expire", s.withRunner(func(w http.ResponseWriter, _ *http.Request, id int64) {
		s.ExpireRunnerToken(id)
		rn, _ := s.Runner(id)
		writeControl(w, http.StatusOK, rn)
	}))
	mux.HandleFunc("DELETE /-/fake/runners/{id}", s.withRunner(func(w http.ResponseWriter, _ *http.Request, id int64) {
		s.DeleteRunnerDirect(id)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /-/fake/clock", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		now := s.now()
		s.mu.Unlock()
		writeControl(w, http.StatusOK, map[string]string{"now": timeJSON(now)})
	})
	mux.HandleFunc("POST /-/fake/clock", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("advance"))
		if err != nil || d < 0 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "advance must be a non-negative Go duration, e.g. 72h"})
			return
		}
		writeControl(w, http.StatusOK, map[string]string{"now": timeJSON(s.AdvanceClock(d))})
	})
	mux.ServeHTTP(w, r)
}

func (s *Server) withRunner(h func(http.ResponseWriter, *http.Request, int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "id is invalid"})
			return
		}
		if _, ok := s.Runner(id); !ok {
			writeControl(w, http.StatusNotFound, map[string]string{"error": "runner not found"})
			return
		}
		h(w, r, id)
	}
}

// controlAddFaults accepts one Fault object or a list of them.
func (s *Server) controlAddFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	var faults []Fault
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		err = json.Unmarshal(b, &faults)
	} else {
		var f Fault
		err = json.Unmarshal(b, &f)
		faults = []Fault{f}
	}
	if err != nil {
		writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	for _, f := range faults {
		s.AddFault(f)
	}
	writeControl(w, http.StatusCreated, s.Faults())
}

func writeControl(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
