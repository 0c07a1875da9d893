package server

import (
	"fmt"
	"net/http"
	"runtime"
)

// metrics serves a few gauges in the Prometheus text format (0.0.4): enough
// for svcreg bench and a dashboard until full instrumentation lands.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	gauge := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", m.HeapAlloc)
	gauge("go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.", m.HeapInuse)
	gauge("go_goroutines", "Number of goroutines.", runtime.NumGoroutine())
	gauge("svcreg_revision", "The store revision.", s.store.Revision())
	gauge("svcreg_watchers", "Watch subscribers.", s.hub.Subscribers())
	gauge("svcreg_leases", "Live instance leases.", s.leases.Len())
}
