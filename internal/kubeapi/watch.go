// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package kubeapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	kwatch "k8s.io/apimachinery/pkg/watch"
)

// maxWatchTimeout ends a watch that names no timeoutSeconds, as
// kube-apiserver's --min-request-timeout does (clients watch again).
const maxWatchTimeout = 30 * time.Minute

// watchBatch is how many events a watcher takes from the cache at once.
const watchBatch = 1000

// watchStream writes one watch's events in the negotiated framing:
// newline-delimited JSON, or length-prefixed protobuf frames.
type watchStream struct {
	w        http.ResponseWriter
	flusher  http.Flusher
	stream   streaming.Encoder
	embedded runtime.Encoder
	buf      bytes.Buffer
	// table, for kubectl get -w, sends each object as a one-row Table.
	table func(metav1.Object) runtime.Object
	// protobuf: the stream is Kubernetes' protobuf, not JSON.
	protobuf bool
}

func (h *handler) newWatchStream(w http.ResponseWriter, r *http.Request, sel *selection) *watchStream {
	info := negotiate(r)
	gv := sel.res.gvr.GroupVersion()
	ws := &watchStream{w: w, embedded: codecs.EncoderForVersion(info.Serializer, gv), protobuf: info.MediaType == mediaProtobuf}
	if wantsTable(r) {
		ws.embedded = codecs.EncoderForVersion(info.Serializer, metav1.SchemeGroupVersion)
		ws.table = func(o metav1.Object) runtime.Object { return table(r, sel.res, []metav1.Object{o}, metav1.ListMeta{}) }
	}
	ws.flusher, _ = w.(http.Flusher)
	media := info.MediaType
	if media != mediaJSON {
		media += ";stream=watch" // as kube-apiserver types a framed stream
	}
	w.Header().Set("Content-Type", media)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	ws.stream = streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(w), codecs.EncoderForVersion(info.StreamSerializer.Serializer, gv))
	return ws
}

func (ws *watchStream) send(t kwatch.EventType, obj runtime.Object) error {
	if m, ok := obj.(metav1.Object); ok && ws.table != nil && t != kwatch.Bookmark {
		obj = ws.table(m)
	}
	ws.buf.Reset()
	if err := ws.embedded.Encode(forEncoding(obj), &ws.buf); err != nil {
		return err
	}
	if err := ws.stream.Encode(&metav1.WatchEvent{Type: string(t), Object: runtime.RawExtension{Raw: ws.buf.Bytes()}}); err != nil {
		return err
	}
	return nil
}

// sendShared sends an event as the cache recorded it, with the object's
// encoding made once per media type and shared by every watcher (a
// thousand informers cost one encoding of each change, not a thousand).
func (ws *watchStream) sendShared(ev *Event) error {
	i := 0
	if ws.protobuf {
		i = 1
	}
	raw, err := ev.encoded[i].get(func() ([]byte, error) {
		var buf bytes.Buffer
		err := ws.embedded.Encode(forEncoding(ev.Object.(runtime.Object)), &buf)
		return buf.Bytes(), err
	})
	if err != nil {
		return err
	}
	return ws.stream.Encode(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}})
}

func (ws *watchStream) flush() {
	if ws.flusher != nil {
		ws.flusher.Flush()
	}
}

// bookmark sends a BOOKMARK: every change up to rev has been sent. The
// one that ends the initial events of a watch-list says so (KEP-3157).
func (ws *watchStream) bookmark(res *resource, rev int64, initialEnd bool) error {
	obj := res.empty()
	if ws.table != nil {
		obj = &metav1.PartialObjectMetadata{} // what a Table watch's bookmark carries
	}
	obj.SetResourceVersion(revisionString(rev))
	if initialEnd {
		obj.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return ws.send(kwatch.Bookmark, obj.(runtime.Object))
}

// checkWatch refuses what kube-apiserver refuses of a watch's options.
func checkWatch(opts metav1.ListOptions) error {
	if opts.SendInitialEvents == nil {
		return nil
	}
	if opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
		return apierrors.NewBadRequest("resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
	}
	if *opts.SendInitialEvents && !opts.AllowWatchBookmarks {
		return apierrors.NewBadRequest("allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true")
	}
	return nil
}

// watch streams a resource's changes after a revision. Without one (or
// at "0") it first sends every matching object as ADDED, as does
// sendInitialEvents=true, which then says where they end with a bookmark.
func (h *handler) watch(w http.ResponseWriter, r *http.Request, acc Access, sel *selection, opts metav1.ListOptions) {
	if err := checkWatch(opts); err != nil {
		writeStatus(w, r, err)
		return
	}
	rv := opts.ResourceVersion
	initial := rv == "" || rv == "0"
	if opts.SendInitialEvents != nil {
		initial = *opts.SendInitialEvents
	}
	if err := h.consistent(r.Context(), rv); err != nil {
		writeStatus(w, r, err)
		return
	}
	from := int64(0)
	if !initial {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion: %q is not a svcreg revision (a decimal number)", rv)))
			return
		}
		from = n
	}
	var snapshot []metav1.Object
	if initial {
		h.Cache.view(func(rev int64) {
			from = rev
			sel.res.each(h.Cache, func(o metav1.Object) {
				if sel.matches(o) {
					snapshot = append(snapshot, o)
				}
			})
		})
	}
	timeout := maxWatchTimeout
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = min(timeout, time.Duration(*opts.TimeoutSeconds)*time.Second)
	}
	ws := h.newWatchStream(w, r, sel)
	for _, o := range snapshot {
		if ws.send(kwatch.Added, o.(runtime.Object)) != nil {
			return
		}
	}
	if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		if ws.bookmark(sel.res, from, true) != nil {
			return
		}
	}
	ws.flush()
	h.follow(acc, ws, sel, opts, from, timeout)
}

// follow sends the cache's events after from until the watch times out,
// the client goes, or the caller's credential ends.
func (h *handler) follow(acc Access, ws *watchStream, sel *selection, opts metav1.ListOptions, from int64, timeout time.Duration) {
	deadline := h.Clock.NewTimer(timeout)
	defer deadline.Stop()
	bookmarks := h.Clock.NewTicker(h.BookmarkInterval)
	defer bookmarks.Stop()
	pos := from
	for {
		evs, now, changed, err := h.Cache.since(pos, watchBatch)
		if err != nil {
			if errors.Is(err, errExpired) {
				st := apierrors.NewResourceExpired(err.Error()).ErrStatus
				st.Kind, st.APIVersion = "Status", "v1"
				ws.send(kwatch.Error, &st)
				ws.flush()
			}
			return
		}
		for _, ev := range evs {
			t, obj, ok := sel.event(ev)
			if !ok {
				continue
			}
			var err error
			if t == ev.Type && obj == ev.Object && ws.table == nil {
				err = ws.sendShared(ev) // as recorded: encoded once for every watcher
			} else {
				err = ws.send(t, obj.(runtime.Object))
			}
			if err != nil {
				return
			}
		}
		pos = max(pos, now)
		if len(evs) > 0 {
			ws.flush()
			continue
		}
		select {
		case <-changed:
		case <-bookmarks.Chan():
			if opts.AllowWatchBookmarks {
				if ws.bookmark(sel.res, pos, false) != nil {
					return
				}
				ws.flush()
			}
		case <-deadline.Chan():
			return
		case <-acc.Context.Done():
			return
		}
	}
}

// event is what a watcher of the selection sees of ev: with a label or
// field selector, a change that starts matching is ADDED and one that
// stops is DELETED (its last matching state, at the change's revision),
// as kube-apiserver's watch cache.
func (s *selection) event(ev *Event) (kwatch.EventType, metav1.Object, bool) {
	if ev.Resource != s.res {
		return "", nil, false
	}
	now := s.matches(ev.Object)
	was := ev.Type == kwatch.Modified && s.matches(ev.Old)
	switch {
	case ev.Type != kwatch.Modified:
		return ev.Type, ev.Object, now
	case now && was:
		return kwatch.Modified, ev.Object, true
	case now:
		return kwatch.Added, ev.Object, true
	case was:
		old := ev.Old.(runtime.Object).DeepCopyObject().(metav1.Object)
		old.SetResourceVersion(revisionString(ev.Revision))
		return kwatch.Deleted, old, true
	}
	return "", nil, false
}
