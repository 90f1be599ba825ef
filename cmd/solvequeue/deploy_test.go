package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/monitor"
)

// This file checks deploy/ against the binary: the files parse, the image runs as non-root,
// every environment variable and command line they give is one the binary reads, the grace
// periods fit the shutdown, and the alert rules use metrics that exist.

// deployDir is deploy/ seen from this package.
const deployDir = "../../deploy"

// deployYAML reads every document of every YAML file under deploy/, by file.
func deployYAML(t *testing.T) map[string][]map[string]any {
	t.Helper()
	docs := map[string][]map[string]any{}
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		rel, _ := filepath.Rel(deployDir, path)
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s does not parse", rel)
			if doc != nil {
				docs[filepath.ToSlash(rel)] = append(docs[filepath.ToSlash(rel)], doc)
			}
		}
		require.NotEmpty(t, docs[filepath.ToSlash(rel)], "%s holds no document", rel)
		return nil
	})
	require.NoError(t, err)
	return docs
}

// binaryEnv is every environment variable the binary reads: each flag's variable, on every command.
func binaryEnv(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if readsEnv(f) {
				vars[envName(f.Name)] = true
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&Env{Getenv: func(string) string { return "" }}))
	for _, v := range []string{"REDIS_URL", "ANYSOLVER_URL", "ANYSOLVER_API_KEY"} {
		require.True(t, vars[v], "%s is read by some command", v)
	}
	return vars
}

// dig walks nested maps and lists: a string key indexes a map, an int a list.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case int:
		return strconv.Itoa(s)
	case nil:
		return ""
	}
	return ""
}

// runsSolvequeue reports whether a compose service runs our image.
func runsSolvequeue(svc map[string]any) bool {
	return dig(svc, "build") != nil || strings.HasPrefix(asString(dig(svc, "image")), "solvequeue")
}

// composeEnv is a compose service's environment as a map (it may be written as a map or a list).
func composeEnv(t *testing.T, svc map[string]any) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := dig(svc, "environment").(type) {
	case map[string]any:
		for k, v := range e {
			env[k] = asString(v)
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(asString(item), "=")
			env[k] = v
		}
	case nil:
	default:
		t.Fatalf("environment is neither a map nor a list: %T", e)
	}
	return env
}

// k8sContainers returns the containers of every workload document, with their document's name.
func k8sContainers(docs map[string][]map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for file, list := range docs {
		if !strings.HasPrefix(file, "k8s/") {
			continue
		}
		for _, doc := range list {
			spec := dig(doc, "spec", "template", "spec")
			for _, key := range []string{"containers", "initContainers"} {
				for _, c := range asList(dig(spec, key)) {
					m, _ := c.(map[string]any)
					out[file+":"+asString(dig(doc, "metadata", "name"))+"/"+asString(m["name"])] = m
				}
			}
		}
	}
	return out
}

// requireCommandLine checks that args is a command line the binary accepts: a known command
// and flags it has.
func requireCommandLine(t *testing.T, where string, args []string) {
	t.Helper()
	root := newRootCmd(&Env{Getenv: func(string) string { return "" }})
	cmd, rest, err := root.Find(args)
	require.NoError(t, err, "%s: %v", where, args)
	require.NotEqual(t, root, cmd, "%s: %v names no command", where, args)
	require.NoError(t, cmd.ParseFlags(rest), "%s: %v", where, args)
}

// envDuration reads a duration variable, or the flag's default when it is not set.
func envDuration(t *testing.T, env map[string]string, name string, def time.Duration) time.Duration {
	t.Helper()
	if env[name] == "" {
		return def
	}
	d, err := time.ParseDuration(env[name])
	require.NoError(t, err, name)
	return d
}

// shutdownNeeds is how long a worker may take to stop after SIGTERM with this environment: the
// jobs' shutdown timeout and the HTTP side's own stop.
func shutdownNeeds(t *testing.T, env map[string]string) time.Duration {
	return envDuration(t, env, "SOLVEQUEUE_SHUTDOWN_TIMEOUT", worker.ShutdownTimeoutDefault) + monitor.ShutdownTimeout
}

// requireHTTPCredentials checks what the worker checks at start: a non-loopback --http needs both.
func requireHTTPCredentials(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if addr := env["SOLVEQUEUE_HTTP"]; addr != "" && !monitor.IsLoopback(addr) {
		require.NotEmpty(t, env["SOLVEQUEUE_HTTP_USER"], "%s: SOLVEQUEUE_HTTP=%s needs SOLVEQUEUE_HTTP_USER", where, addr)
		require.NotEmpty(t, env["SOLVEQUEUE_HTTP_PASSWORD"], "%s: SOLVEQUEUE_HTTP=%s needs SOLVEQUEUE_HTTP_PASSWORD", where, addr)
	}
}

func TestDeployYAMLParses(t *testing.T) {
	t.Parallel()
	docs := deployYAML(t)
	for _, want := range []string{"compose.yaml", "k8s/deployment.yaml", "k8s/service.yaml", "k8s/kustomization.yaml",
		"k8s/secret.example.yaml", "prometheus/alerts.yaml"} {
		require.Contains(t, docs, want)
	}
	for file, list := range docs {
		if !strings.HasPrefix(file, "k8s/") {
			continue
		}
		for _, doc := range list {
			require.NotEmpty(t, asString(doc["apiVersion"]), file)
			require.NotEmpty(t, asString(doc["kind"]), file)
		}
	}
}

func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	type stage struct {
		from  string
		lines []string
	}
	var stages []stage
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, stage{from: line})
			continue
		}
		require.NotEmpty(t, stages, "an instruction before the first FROM: %s", line)
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	require.GreaterOrEqual(t, len(stages), 2, "a multi-stage build")
	build, final := stages[0], stages[len(stages)-1]
	require.Regexp(t, `^FROM golang:1\.26\S* AS \w+$`, build.from, "the builder is Go 1.26, as go.mod asks")
	require.Regexp(t, `^FROM (gcr\.io/distroless/static\S*|scratch)$`, final.from, "a small final image")

	buildText := strings.Join(build.lines, "\n")
	require.Contains(t, buildText, "CGO_ENABLED=0", "a static binary")
	require.Contains(t, buildText, "./cmd/solvequeue")
	// Every top-level package the binary is built from is copied in.
	entries, err := os.ReadDir("../..")
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "deploy" {
			continue
		}
		goFiles, _ := filepath.Glob(filepath.Join("../..", e.Name(), "*", "*.go"))
		direct, _ := filepath.Glob(filepath.Join("../..", e.Name(), "*.go"))
		if len(goFiles)+len(direct) == 0 {
			continue
		}
		require.Regexp(t, `(?m)^COPY (\./)?`+regexp.QuoteMeta(e.Name())+`/? `, buildText, "the build stage copies %s/", e.Name())
	}

	var user string
	var entrypoint, cmd string
	for _, l := range final.lines {
		switch {
		case strings.HasPrefix(l, "USER "):
			user = strings.TrimPrefix(l, "USER ")
		case strings.HasPrefix(l, "ENTRYPOINT "):
			entrypoint = strings.TrimPrefix(l, "ENTRYPOINT ")
		case strings.HasPrefix(l, "CMD "):
			cmd = strings.TrimPrefix(l, "CMD ")
		}
	}
	require.Regexp(t, `^nonroot(:nonroot)?$|^65532(:65532)?$`, user, "the final stage runs as the non-root user")
	require.Regexp(t, `^\["\S*solvequeue"\]$`, entrypoint)
	require.Equal(t, `["worker"]`, cmd)
}

func TestDeployEnvironmentIsRead(t *testing.T) {
	t.Parallel()
	known := binaryEnv(t)
	docs := deployYAML(t)
	checked := 0
	requireKnown := func(where, name string) {
		t.Helper()
		require.True(t, known[name], "%s sets %s, which solvequeue does not read", where, name)
		checked++
	}

	// compose.yaml: every solvequeue service.
	compose := docs["compose.yaml"][0]
	services, _ := compose["services"].(map[string]any)
	require.NotEmpty(t, services)
	var sawWorker, sawFake, sawRedis bool
	for name, raw := range services {
		svc, _ := raw.(map[string]any)
		if !runsSolvequeue(svc) {
			sawRedis = sawRedis || strings.HasPrefix(asString(svc["image"]), "redis:")
			continue
		}
		env := composeEnv(t, svc)
		for k := range env {
			requireKnown("compose.yaml service "+name, k)
		}
		requireHTTPCredentials(t, "compose.yaml service "+name, env)
		var args []string
		for _, a := range asList(svc["command"]) {
			args = append(args, asString(a))
		}
		require.NotEmpty(t, args, "service %s names its command", name)
		requireCommandLine(t, "compose.yaml service "+name, args)
		switch args[0] {
		case "worker":
			sawWorker = true
			for _, v := range []string{"REDIS_URL", "ANYSOLVER_URL", "ANYSOLVER_API_KEY"} {
				require.Contains(t, env, v, "the worker service sets %s", v)
			}
			grace, err := time.ParseDuration(asString(svc["stop_grace_period"]))
			require.NoError(t, err, "the worker service sets stop_grace_period")
			require.Greater(t, grace, shutdownNeeds(t, env), "stop_grace_period must outlast the worker's shutdown")
		case "gateway":
			if !gateway.IsLoopback(env["SOLVEQUEUE_ADDR"]) {
				require.NotEmpty(t, env["SOLVEQUEUE_KEYS"], "compose service %s: a gateway on a non-loopback address needs SOLVEQUEUE_KEYS", name)
			}
		case "fake-anysolver":
			sawFake = true
			require.Contains(t, asList(svc["profiles"]), "staging", "the fake runs under the staging profile only")
		}
	}
	require.True(t, sawWorker && sawFake && sawRedis, "compose runs redis, the worker and the fake")
	redisCmd := strings.Join(func() []string {
		var out []string
		for _, a := range asList(dig(services, "redis", "command")) {
			out = append(out, asString(a))
		}
		return out
	}(), " ")
	require.Contains(t, redisCmd, "--appendonly yes")
	require.Regexp(t, `--appendfsync (everysec|always)`, redisCmd)
	require.NotNil(t, dig(services, "redis", "healthcheck"))

	// .env.example: every name it offers is read (compose passes them on by name).
	data, err := os.ReadFile(filepath.Join(deployDir, ".env.example"))
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		require.True(t, ok, ".env.example: %q is not NAME=value", line)
		requireKnown(".env.example", name)
	}

	// k8s: every container of every workload.
	containers := k8sContainers(docs)
	require.NotEmpty(t, containers)
	for where, c := range containers {
		env := map[string]string{}
		for _, e := range asList(c["env"]) {
			name := asString(dig(e, "name"))
			requireKnown(where, name)
			value := asString(dig(e, "value"))
			if dig(e, "valueFrom") != nil {
				value = "(from " + asString(dig(e, "valueFrom", "secretKeyRef", "name")) + ")"
			}
			env[name] = value
		}
		requireHTTPCredentials(t, where, env)
		var args []string
		for _, a := range asList(c["args"]) {
			args = append(args, asString(a))
		}
		requireCommandLine(t, where, args)
	}
	require.Greater(t, checked, 10)
}

func TestDeployKubernetesWorker(t *testing.T) {
	t.Parallel()
	docs := deployYAML(t)
	deployment, service := k8sDoc(docs, "Deployment", "solvequeue-worker"), k8sDoc(docs, "Service", "solvequeue-worker")
	require.NotNil(t, deployment)
	require.NotNil(t, service)
	pod := dig(deployment, "spec", "template", "spec")
	c, _ := dig(pod, "containers", 0).(map[string]any)
	require.NotNil(t, c)
	require.Equal(t, []any{"worker"}, c["args"])

	env := map[string]string{}
	for _, e := range asList(c["env"]) {
		env[asString(dig(e, "name"))] = asString(dig(e, "value"))
		if name := asString(dig(e, "name")); name == "ANYSOLVER_API_KEY" || name == "SOLVEQUEUE_HTTP_PASSWORD" || name == "SOLVEQUEUE_METRICS_TOKEN" {
			require.NotNil(t, dig(e, "valueFrom", "secretKeyRef"), "%s comes from a Secret", name)
			require.Nil(t, dig(e, "value"), "%s is not written into the manifest", name)
		}
	}
	require.Contains(t, env, "ANYSOLVER_API_KEY")
	require.Contains(t, env, "SOLVEQUEUE_METRICS_TOKEN", "Prometheus scrapes with its own read-only token, not the web UI's password")

	grace, ok := dig(pod, "terminationGracePeriodSeconds").(int)
	require.True(t, ok, "terminationGracePeriodSeconds is set")
	require.Greater(t, time.Duration(grace)*time.Second, shutdownNeeds(t, env), "the grace period must outlast the worker's shutdown")

	require.Equal(t, true, dig(pod, "securityContext", "runAsNonRoot"))
	require.Equal(t, monitor.HealthzPath, asString(dig(c, "livenessProbe", "httpGet", "path")))
	readiness := asString(dig(c, "readinessProbe", "httpGet", "path"))
	require.Contains(t, []string{monitor.HealthzPath, monitor.ReadyzPath}, readiness)
	if readiness == monitor.ReadyzPath && !monitor.IsLoopback(env["SOLVEQUEUE_HTTP"]) {
		require.NotNil(t, dig(c, "readinessProbe", "httpGet", "httpHeaders"), "/readyz needs basic auth on a pod address")
	}
	portName := asString(dig(c, "ports", 0, "name"))
	port := dig(c, "ports", 0, "containerPort").(int)
	require.True(t, strings.HasSuffix(env["SOLVEQUEUE_HTTP"], ":"+strconv.Itoa(port)), "--http listens on the container port")
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		require.Equal(t, portName, asString(dig(c, probe, "httpGet", "port")), probe)
	}
	require.NotNil(t, dig(c, "resources", "requests", "cpu"))
	require.NotNil(t, dig(c, "resources", "requests", "memory"))
	require.NotNil(t, dig(c, "resources", "limits", "memory"))

	// The Service selects the worker's pods and reaches the named port.
	labels, _ := dig(deployment, "spec", "template", "metadata", "labels").(map[string]any)
	selector, _ := dig(service, "spec", "selector").(map[string]any)
	require.NotEmpty(t, selector)
	for k, v := range selector {
		require.Equal(t, v, labels[k], "the Service selects pods labelled %s=%v", k, v)
	}
	require.Equal(t, portName, asString(dig(service, "spec", "ports", 0, "targetPort")))
}

// k8sDoc returns the Kubernetes document of a kind and name, or nil.
func k8sDoc(docs map[string][]map[string]any, kind, name string) map[string]any {
	for file, list := range docs {
		if !strings.HasPrefix(file, "k8s/") {
			continue
		}
		for _, doc := range list {
			if doc["kind"] == kind && asString(dig(doc, "metadata", "name")) == name {
				return doc
			}
		}
	}
	return nil
}

// TestDeployGateway checks the gateway's compose service and Kubernetes Deployment and Service:
// on a pod or container address it has its keys file (it refuses to start without), mounted
// from where the file says; its ports, probes and grace period fit; the example keys files parse.
func TestDeployGateway(t *testing.T) {
	t.Parallel()
	docs := deployYAML(t)

	// compose.yaml
	services, _ := docs["compose.yaml"][0]["services"].(map[string]any)
	svc, _ := services["gateway"].(map[string]any)
	require.NotNil(t, svc, "compose runs the gateway")
	require.Equal(t, []any{"gateway"}, svc["command"])
	env := composeEnv(t, svc)
	require.False(t, gateway.IsLoopback(env["SOLVEQUEUE_ADDR"]), "the gateway listens on the container's address")
	require.NotEmpty(t, env["SOLVEQUEUE_KEYS"], "so it needs its keys file")
	mounted := false
	for _, v := range asList(svc["volumes"]) {
		mounted = mounted || strings.Contains(asString(v), ":"+env["SOLVEQUEUE_KEYS"]+":ro")
	}
	require.True(t, mounted, "the keys file is mounted read-only where SOLVEQUEUE_KEYS says")
	grace, err := time.ParseDuration(asString(svc["stop_grace_period"]))
	require.NoError(t, err)
	require.Greater(t, grace, gateway.ShutdownTimeout+monitor.ShutdownTimeout)
	require.Contains(t, asList(svc["profiles"]), "gateway")
	port := env["SOLVEQUEUE_ADDR"][strings.LastIndex(env["SOLVEQUEUE_ADDR"], ":")+1:]
	require.Contains(t, asList(svc["ports"]), "127.0.0.1:"+port+":"+port, "published on the host's loopback only")

	// k8s
	deployment, service := k8sDoc(docs, "Deployment", "solvequeue-gateway"), k8sDoc(docs, "Service", "solvequeue-gateway")
	require.NotNil(t, deployment)
	require.NotNil(t, service)
	pod := dig(deployment, "spec", "template", "spec")
	c, _ := dig(pod, "containers", 0).(map[string]any)
	require.Equal(t, []any{"gateway"}, c["args"])
	kenv := map[string]string{}
	for _, e := range asList(c["env"]) {
		kenv[asString(dig(e, "name"))] = asString(dig(e, "value"))
	}
	require.NotContains(t, kenv, "ANYSOLVER_API_KEY", "the gateway never needs the AnySolver key")
	require.False(t, gateway.IsLoopback(kenv["SOLVEQUEUE_ADDR"]))
	keysPath := kenv["SOLVEQUEUE_KEYS"]
	require.NotEmpty(t, keysPath)
	mountPath := asString(dig(c, "volumeMounts", 0, "mountPath"))
	require.True(t, strings.HasPrefix(keysPath, mountPath+"/"), "SOLVEQUEUE_KEYS is inside the mounted Secret")
	require.Equal(t, "solvequeue-gateway-keys", asString(dig(pod, "volumes", 0, "secret", "secretName")))
	require.Equal(t, keysPath[len(mountPath)+1:], asString(dig(pod, "volumes", 0, "secret", "items", 0, "path")))
	ports := map[string]int{}
	for _, p := range asList(c["ports"]) {
		ports[asString(dig(p, "name"))] = dig(p, "containerPort").(int)
	}
	require.True(t, strings.HasSuffix(kenv["SOLVEQUEUE_ADDR"], ":"+strconv.Itoa(ports["api"])))
	require.True(t, strings.HasSuffix(kenv["SOLVEQUEUE_HTTP"], ":"+strconv.Itoa(ports["http"])))
	require.Equal(t, monitor.HealthzPath, asString(dig(c, "livenessProbe", "httpGet", "path")))
	require.Equal(t, "http", asString(dig(c, "readinessProbe", "httpGet", "port")))
	graceS, _ := dig(pod, "terminationGracePeriodSeconds").(int)
	require.Greater(t, time.Duration(graceS)*time.Second, gateway.ShutdownTimeout+monitor.ShutdownTimeout)
	labels, _ := dig(deployment, "spec", "template", "metadata", "labels").(map[string]any)
	selector, _ := dig(service, "spec", "selector").(map[string]any)
	for k, v := range selector {
		require.Equal(t, v, labels[k])
	}
	require.Equal(t, "api", asString(dig(service, "spec", "ports", 0, "targetPort")))
	require.NotNil(t, k8sDoc(docs, "Deployment", "solvequeue-worker"), "the worker is still deployed beside it")

	// The example keys files are keys files.
	_, err = gateway.LoadKeys(filepath.Join(deployDir, "gateway-keys.example.yaml"))
	require.NoError(t, err)
	for _, doc := range docs["k8s/secret.example.yaml"] {
		if asString(dig(doc, "metadata", "name")) == "solvequeue-gateway-keys" {
			_, err := gateway.ParseKeys("secret.example.yaml", []byte(asString(dig(doc, "stringData", "keys.yaml"))))
			require.NoError(t, err)
		}
	}
}

// servedMetrics returns the name and type of every metric family a worker's /metrics serves:
// worker.NewMetrics (each observed once, so every family has a sample) overlaid with the
// monitor's asynq queue and dead-letter collectors, read from an in-process Redis with one queue.
func servedMetrics(t *testing.T) map[string]string {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	_, err = client.Submit(context.Background(), enqueue.Job{ID: "metrics-1", Task: map[string]any{"type": "X"}})
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	m := worker.NewMetrics(reg)
	m.JobEnded(worker.JobEnd{Queue: "default", TaskType: "X", State: enqueue.StateSolved, Attempts: 1, CreateTasks: 1,
		Polls: 1, Cost: 0.002, SolveTime: time.Second, EndToEnd: 2 * time.Second})
	m.AttemptRescheduled("retry", "SERVICE_UNAVAILABLE")
	m.Called("createTask", "ok", 100*time.Millisecond)
	m.BreakerChanged(false, "")
	m.Spent("default", 0.002)
	m.ProviderResult("CapSolver", "", time.Second)
	m.BudgetRead(ledger.Usage{Queue: "default", Budget: policyfile.Budget{Window: time.Hour, MaxCost: 1, MaxCreateTasks: 10},
		Cost: 0.002, CreateTasks: 1, RemainingCost: 0.998, RemainingCreateTasks: 9})
	m.BalanceRead(12.5)
	m.CallbackDone("delivered")
	m.FairShareHeld("tenant")
	observeGateway(t, client, rc, reg)

	h, err := monitor.NewHandler(monitor.Config{Addr: "127.0.0.1:0", Redis: rc, Registry: reg})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+monitor.MetricsPath, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	types := map[string]string{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

// observeGateway serves one createTask and one report through a gateway whose metrics are in
// reg, as a worker started with --gateway does, so that every gateway family has a sample.
func observeGateway(t *testing.T, client *enqueue.Client, rc redis.UniversalClient, reg *prometheus.Registry) {
	t.Helper()
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Metrics: gateway.NewMetrics(reg)})
	require.NoError(t, err)
	post := func(method, body string) map[string]any {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://127.0.0.1/"+method, strings.NewReader(body)))
		var a map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
		return a
	}
	a := post(gateway.MethodCreateTask, `{"clientKey":"k","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}`)
	require.Equal(t, 0.0, a["errorId"], "%v", a)
	a = post(gateway.MethodReportIncorrectImageCaptcha, fmt.Sprintf(`{"clientKey":"k","taskId":%.0f}`, a["taskId"]))
	require.Equal(t, "success", a["status"], "%v", a)
}

// promQLMetrics returns the solvequeue_* and asynq_* names an expression uses, with a
// histogram's _bucket, _sum and _count mapped to its family.
func promQLMetrics(expr string, types map[string]string) []string {
	seen := map[string]bool{}
	for _, name := range regexp.MustCompile(`\b(?:solvequeue|asynq)_[a-z0-9_]+`).FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(name, suffix); base != name && types[base] == "histogram" {
				name = base
			}
		}
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestDeployAlertRules(t *testing.T) {
	t.Parallel()
	types := servedMetrics(t)
	for _, want := range []string{"solvequeue_dead_letters", "solvequeue_breaker_open", "solvequeue_attempts_rescheduled_total", "asynq_queue_latency_seconds"} {
		require.Contains(t, types, want, "the worker serves %s", want)
	}
	docs := deployYAML(t)
	rules := docs["prometheus/alerts.yaml"]
	require.Len(t, rules, 1)
	names := map[string]bool{}
	uses := map[string]bool{}
	for _, g := range asList(rules[0]["groups"]) {
		require.NotEmpty(t, asString(dig(g, "name")))
		for _, r := range asList(dig(g, "rules")) {
			name := asString(dig(r, "alert"))
			require.NotEmpty(t, name, "every rule is an alert")
			require.False(t, names[name], "alert %s is defined once", name)
			names[name] = true
			require.Contains(t, []string{"warning", "critical"}, asString(dig(r, "labels", "severity")), name)
			require.NotEmpty(t, asString(dig(r, "annotations", "summary")), name)
			expr := asString(dig(r, "expr"))
			metrics := promQLMetrics(expr, types)
			require.NotEmpty(t, metrics, "%s uses a solvequeue or asynq metric", name)
			for _, m := range metrics {
				require.Contains(t, types, m, "alert %s uses %s, which the worker does not serve", name, m)
				uses[m] = true
			}
			if f := asString(dig(r, "for")); f != "" {
				_, err := time.ParseDuration(f)
				require.NoError(t, err, "%s: for", name)
			}
		}
	}
	for _, want := range []string{"solvequeue_dead_letters", "solvequeue_breaker_open", "solvequeue_attempts_rescheduled_total", "asynq_queue_latency_seconds"} {
		require.True(t, uses[want], "an alert watches %s", want)
	}
}

func TestPromQLMetrics(t *testing.T) {
	t.Parallel()
	types := map[string]string{"solvequeue_job_seconds": "histogram", "solvequeue_jobs_ended_total": "counter"}
	got := promQLMetrics(`histogram_quantile(0.9, sum by (le) (rate(solvequeue_job_seconds_bucket[5m]))) / sum(rate(solvequeue_jobs_ended_total{state="dead"}[5m])) > on() asynq_queue_size`, types)
	require.Equal(t, []string{"asynq_queue_size", "solvequeue_job_seconds", "solvequeue_jobs_ended_total"}, got)
	require.Empty(t, promQLMetrics(`up == 0`, types))
}

// TestDeployGrafanaDashboard checks that the dashboard parses as Grafana's JSON model, that every
// panel queries something, and that every metric it queries is one a worker serves.
func TestDeployGrafanaDashboard(t *testing.T) {
	t.Parallel()
	types := servedMetrics(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "solvequeue.json"))
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	require.Equal(t, "solvequeue", dash.UID)
	require.GreaterOrEqual(t, len(dash.Panels), 8)
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Title)
		require.NotEmpty(t, p.Targets, "panel %q queries something", p.Title)
		for _, target := range p.Targets {
			metrics := promQLMetrics(target.Expr, types)
			require.NotEmpty(t, metrics, "panel %q: %s", p.Title, target.Expr)
			for _, m := range metrics {
				require.Contains(t, types, m, "panel %q queries %s, which the worker does not serve", p.Title, m)
				queried[m] = true
			}
		}
	}
	for _, want := range []string{"solvequeue_jobs_ended_total", "solvequeue_create_tasks_per_job", "solvequeue_spend_cost_total",
		"solvequeue_budget_remaining", "solvequeue_provider_results_total", "solvequeue_provider_solve_seconds",
		"asynq_queue_latency_seconds", "solvequeue_breaker_open"} {
		require.True(t, queried[want], "the dashboard shows %s", want)
	}
}
