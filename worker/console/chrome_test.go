//go:build unix

package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A small driver for a real headless Chromium over the DevTools protocol, spoken through
// --remote-debugging-pipe (JSON messages ended by a NUL byte, on file descriptors 3 and 4): it
// navigates, clicks and types as an operator would, reads the rendered page and takes
// screenshots. worker/monitor's browser test only dumps a page; a console test must press its
// buttons too.

// chromeTimeout bounds one step (a command, a page load).
const chromeTimeout = 60 * time.Second

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// chrome is one headless Chromium with one page.
type chrome struct {
	t       *testing.T
	out     *os.File // commands to Chromium (its fd 3)
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpMessage
	session string
	loads   chan struct{} // one per page load
}

// startChrome starts Chromium and opens a page; both end with the test.
func startChrome(t *testing.T, path string) *chrome {
	t.Helper()
	toChrome, chromeIn, err := os.Pipe()
	require.NoError(t, err)
	chromeOut, fromChrome, err := os.Pipe()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // its fd 3 (reads) and fd 4 (writes)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	_ = toChrome.Close()
	_ = fromChrome.Close()
	c := &chrome{t: t, out: chromeIn, waiting: map[int]chan cdpMessage{}, loads: make(chan struct{}, 16)}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cancel()
		_ = cmd.Wait()
		_ = chromeIn.Close()
		_ = chromeOut.Close()
	})
	go c.read(chromeOut)

	var target struct{ TargetID string }
	c.decode(c.send("", "Target.createTarget", map[string]any{"url": "about:blank"}), &target)
	var attached struct{ SessionID string }
	c.decode(c.send("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &attached)
	c.session = attached.SessionID
	for _, m := range []string{"Page.enable", "Network.enable", "Runtime.enable"} {
		c.call(m, nil)
	}
	return c
}

// read delivers Chromium's answers to their callers and counts page loads.
func (c *chrome) read(from *os.File) {
	r := bufio.NewReaderSize(from, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.waiting[m.ID]
			delete(c.waiting, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		if m.Method == "Page.loadEventFired" {
			select {
			case c.loads <- struct{}{}:
			default:
			}
		}
	}
}

// send runs a command in a session ("" for the browser) and returns its result.
func (c *chrome) send(session, method string, params any) json.RawMessage {
	c.t.Helper()
	result, cdpErr := c.sendOrErr(session, method, params)
	if cdpErr != "" {
		c.t.Fatalf("chromium %s: %s", method, cdpErr)
	}
	return result
}

// sendOrErr is send that returns the browser's error message instead of failing the test on it.
func (c *chrome) sendOrErr(session, method string, params any) (json.RawMessage, string) {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpMessage, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	require.NoError(c.t, err)
	_, err = c.out.Write(append(raw, 0))
	require.NoError(c.t, err)
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, m.Error.Message
		}
		return m.Result, ""
	case <-time.After(chromeTimeout):
		c.t.Fatalf("chromium %s: no answer in %s", method, chromeTimeout)
		return nil, ""
	}
}

func (c *chrome) call(method string, params any) json.RawMessage {
	c.t.Helper()
	return c.send(c.session, method, params)
}

func (c *chrome) decode(raw json.RawMessage, v any) {
	c.t.Helper()
	require.NoError(c.t, json.Unmarshal(raw, v))
}

// basicAuth makes every request of the page carry the operator's credentials, as a browser
// does once they were typed in.
func (c *chrome) basicAuth(user, pass string) {
	c.t.Helper()
	c.call("Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}})
}

// forgetLoads drops the loads counted so far.
func (c *chrome) forgetLoads() {
	for {
		select {
		case <-c.loads:
		default:
			return
		}
	}
}

// waitLoad waits for the next page load.
func (c *chrome) waitLoad() {
	c.t.Helper()
	select {
	case <-c.loads:
	case <-time.After(chromeTimeout):
		c.t.Fatalf("chromium: no page load in %s (at %s)", chromeTimeout, c.eval("location.href"))
	}
}

// navigate opens url and waits for it to load.
func (c *chrome) navigate(url string) {
	c.t.Helper()
	c.forgetLoads()
	c.call("Page.navigate", map[string]any{"url": url})
	c.waitLoad()
}

// act runs js that leads to another page (a click on a submit button) and waits for it.
func (c *chrome) act(js string) {
	c.t.Helper()
	c.forgetLoads()
	c.eval(js)
	c.waitLoad()
}

// eval runs js in the page and returns its value as text.
func (c *chrome) eval(js string) string {
	c.t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	c.decode(c.call("Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true}), &res)
	if res.ExceptionDetails != nil {
		c.t.Fatalf("chromium: %s: %s", js, res.ExceptionDetails.Text)
	}
	switch v := res.Result.Value.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}

// waitFor waits until js is true in the page (checked every 50 ms). A check that the browser
// could not run because the page was navigating away (a form a script submitted) counts as
// not yet.
func (c *chrome) waitFor(js string) {
	c.t.Helper()
	deadline := time.Now().Add(chromeTimeout)
	for !c.holds("String(Boolean(" + js + "))") {
		if time.Now().After(deadline) {
			c.t.Fatalf("chromium: %s never came true; at %s: %s", js, c.eval("location.href"), c.eval("document.body ? document.body.innerText : ''"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// holds evaluates js, which yields "true" or "false", and says whether it yielded "true"; an
// evaluation the browser refused because the page navigated or its context went away is false.
func (c *chrome) holds(js string) bool {
	c.t.Helper()
	raw, cdpErr := c.sendOrErr(c.session, "Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true})
	if cdpErr != "" {
		if strings.Contains(cdpErr, "navigated or closed") || strings.Contains(cdpErr, "context") {
			return false
		}
		c.t.Fatalf("chromium Runtime.evaluate: %s", cdpErr)
	}
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	c.decode(raw, &res)
	return res.Result.Value == "true"
}

// html is the page as rendered.
func (c *chrome) html() string {
	c.t.Helper()
	return c.eval("document.documentElement.outerHTML")
}

// screenshot saves the whole page, width pixels wide (a phone's when mobile), as a PNG.
func (c *chrome) screenshot(path string, width int, mobile bool) {
	c.t.Helper()
	metrics := func(height int) {
		c.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height,
			"deviceScaleFactor": 1, "mobile": mobile})
	}
	metrics(800)
	height, err := strconv.Atoi(c.eval("String(document.documentElement.scrollHeight)"))
	require.NoError(c.t, err)
	metrics(min(max(height, 400), 4000))
	var shot struct{ Data string }
	c.decode(c.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot)
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(c.t, err)
	require.True(c.t, strings.HasPrefix(string(raw), "\x89PNG"))
	require.NoError(c.t, os.WriteFile(path, smallPNG(c.t, raw), 0o644))
	c.call("Emulation.clearDeviceMetricsOverride", nil)
}

// smallPNG re-encodes a screenshot with its 256 most frequent colours as a palette (a page of
// flat colours loses nothing visible) at the best compression: a third of the size.
func smallPNG(t *testing.T, raw []byte) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	require.NoError(t, err)
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colors := make([]color.RGBA, 0, len(counts))
	for c := range counts {
		colors = append(colors, c)
	}
	sort.Slice(colors, func(i, j int) bool {
		if counts[colors[i]] != counts[colors[j]] {
			return counts[colors[i]] > counts[colors[j]]
		}
		a, b := colors[i], colors[j]
		return a.R < b.R || a.R == b.R && (a.G < b.G || a.G == b.G && (a.B < b.B || a.B == b.B && a.A < b.A))
	})
	palette := make(color.Palette, 0, 256)
	for _, c := range colors[:min(len(colors), 256)] {
		palette = append(palette, c)
	}
	p := image.NewPaletted(b, palette)
	draw.Draw(p, b, img, b.Min, draw.Src)
	var out bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, p))
	return out.Bytes()
}
