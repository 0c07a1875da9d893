// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	svcregv1 "github.com/svcreg/svcreg/gen/svcreg/v1"
)

func TestWebViewServed(t *testing.T) {
	ts := startServer(t, Config{})
	tests := []struct {
		path, wantType, wantBody string
	}{
		{"/ui/", "text/html", `<script src="app.js" defer></script>`},
		{"/ui/app.js", "text/javascript", "EVENT_TYPE_DELETED"},
		{"/ui/app.css", "text/css", "prefers-color-scheme"},
	}
	for _, tt := range tests {
		resp, err := http.Get(ts.base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		_, _ = fmt.Fprint(body, readAll(t, resp))
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) || !strings.Contains(body.String(), tt.wantBody) {
			t.Errorf("GET %s: %d %s, body has %q: %v", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantBody, strings.Contains(body.String(), tt.wantBody))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
		}
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(ts.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// browser starts Debian's chromium, headless, for the web view tests.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; CI installs it): the web view's browser test needs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute) // a bound on a starved machine, not a wait
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	return ctx
}

// screenshot saves the page as a test artifact ($SVCREG_ARTIFACTS, which
// CI keeps; else the test's temporary directory).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SVCREG_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// waitText waits until the element sel names holds every one of want in
// its text, on the page's own changes (the page redraws as events come,
// so a one-shot read could catch a row being replaced). The browser
// context's bound ends the wait if it never does.
func waitText(t *testing.T, ctx context.Context, sel string, want ...string) {
	t.Helper()
	script := fmt.Sprintf(`new Promise((done) => {
		const want = %s;
		const ok = () => { const el = document.querySelector(%q); return el && want.every((w) => el.textContent.includes(w)); };
		if (ok()) return done(true);
		new MutationObserver(() => { if (ok()) done(true); }).observe(document.body, {childList: true, subtree: true, characterData: true});
	})`, jsStrings(want), sel)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](script, chromedp.EvalAwaitPromise)); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s never showed %q: %v\npage:\n%s", sel, want, err, text)
	}
}

func jsStrings(ss []string) string {
	quoted := make([]string, len(ss))
	for i, s := range ss {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ",") + "]"
}

// TestWebViewInBrowser: in a real browser, the services page lists a
// created service, and an instance registered while the service page is
// open appears there within 1 s, without a reload, from the watch stream;
// its Drain button drains it.
func TestWebViewInBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	ts := startServer(t, Config{})
	ts.mustCreateService(t, &svcregv1.Service{Name: "web", Namespace: "shop", Selector: map[string]string{"app": "web"},
		Ports: []*svcregv1.ServicePort{{Name: "http", Port: 80, TargetPort: "8080"}}, Scheduler: "wlc"})
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "web-1", Namespace: "shop", Ip: "10.0.0.1", Labels: map[string]string{"app": "web"}, TtlSeconds: 300})

	if err := chromedp.Do(ctx, chromedp.Navigate(ts.base+"/ui/#/services")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `tr[data-service="shop/web"]`, "1/1", "wlc", "ClusterIP")
	// First paint, as the page measured it (reported, not asserted: it
	// is the browser's time on a shared machine; docs/benchmarks.md).
	if fcp, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1`)); err == nil {
		t.Logf("first contentful paint of /ui/: %.0f ms", fcp)
	}
	screenshot(t, ctx, "webview-services")

	// The service page; a marker on window survives only if nothing reloads.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.base+"/ui/#/services/shop/web"),
		chromedp.WaitVisible(`tr[data-endpoint="web-1"]`),
		chromedp.Evaluate[chromedp.Void](`window.noReload = true; window.appeared = new Promise((done) => {
			const seen = () => document.querySelector('tr[data-endpoint="web-2"]');
			new MutationObserver(() => { if (seen()) done(performance.now()); }).observe(document.body, {childList: true, subtree: true});
		}); true`),
	); err != nil {
		t.Fatal(err)
	}
	startedAt, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.now()`))
	if err != nil {
		t.Fatal(err)
	}
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "web-2", Namespace: "shop", Ip: "10.0.0.2", Labels: map[string]string{"app": "web"}})
	appearedAt, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.appeared`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	noReload, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.noReload === true`))
	if err != nil {
		t.Fatal(err)
	}
	if !noReload {
		t.Error("the page reloaded to show the new instance")
	}
	// From before the registration to the row in the page: the watch
	// stream's push, on loopback.
	if took := time.Duration((appearedAt - startedAt) * float64(time.Millisecond)); took > time.Second {
		t.Errorf("the new instance took %v to appear, want within 1 s", took)
	} else {
		t.Logf("the new instance appeared %v after its registration began", took)
	}

	if err := chromedp.Do(ctx, chromedp.Click(`button[aria-label="Drain web-1"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `tr[data-endpoint="web-1"] .state`, "Terminating")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`button[aria-label="Undrain web-1"]`)); err != nil {
		t.Fatalf("no Undrain button once drained: %v", err)
	}
	inst, err := ts.client.GetInstance(context.Background(), &svcregv1.GetInstanceRequest{Namespace: "shop", Name: "web-1"})
	if err != nil || !inst.GetInstance().GetTerminating() {
		t.Errorf("the Drain button did not drain web-1: %v %v", inst, err)
	}
	screenshot(t, ctx, "webview-service")

	// The services page follows too: a third instance moves its count.
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.base+"/ui/#/services")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `tr[data-service="shop/web"]`, "1/2")
	ts.mustCreateInstance(t, &svcregv1.Instance{Name: "web-3", Namespace: "shop", Ip: "10.0.0.3", Labels: map[string]string{"app": "web"}})
	waitText(t, ctx, `tr[data-service="shop/web"]`, "2/3")
}

// TestWebViewWithToken: with tokens required, the web view shows what its
// token may read, and offers Drain only to a token that may write there.
func TestWebViewWithToken(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	as := startAuthServer(t, Config{})
	loads := 0
	useToken := func(token string) {
		t.Helper()
		// The token goes in first; then a URL of its own loads the page
		// afresh (Navigate returns once it has loaded), so nothing below can
		// match the page of the token before.
		loads++
		if err := chromedp.Do(ctx,
			chromedp.Navigate(as.base+"/ui/"),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`sessionStorage.setItem('svcreg-token', %q); true`, token)),
			chromedp.Navigate(fmt.Sprintf("%s/ui/?load=%d#/services", as.base, loads)),
			chromedp.WaitVisible(`tr[data-service="own/web"]`),
		); err != nil {
			t.Fatal(err)
		}
	}
	// No token: the page says where one goes, once.
	if err := chromedp.Do(ctx, chromedp.Navigate(as.base+"/ui/?load=none#/services")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#error", "The registry wants a token. Press Token (top right)")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.body.innerText.split("Press Token").length - 1`)); err != nil || n != 1 {
		t.Errorf("the page says where the token goes %d times (%v), want once", n, err)
	}
	useToken(as.bearer["reader"])
	others, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-service="other/web"]').length`))
	if err != nil || others != 0 {
		t.Errorf("a reader of own sees other's service (%d rows, %v)", others, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(as.base+"/ui/?load=reader#/services/own/web"), chromedp.WaitVisible(`tr[data-endpoint="web-1"]`)); err != nil {
		t.Fatal(err)
	}
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('button[aria-label^="Drain"]').length`))
	if err != nil || buttons != 0 {
		t.Errorf("a reader is offered %d Drain buttons (%v)", buttons, err)
	}
	useToken(as.bearer["admin"])
	if err := chromedp.Do(ctx, chromedp.Navigate(as.base+"/ui/?load=admin#/services/own/web"), chromedp.WaitVisible(`button[aria-label="Drain web-1"]`)); err != nil {
		t.Fatalf("an admin of own is not offered Drain: %v", err)
	}
}
