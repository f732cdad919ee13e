package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sDoc is the part of a manifest document the tests read.
type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		BackoffLimit            *int `yaml:"backoffLimit"`
		TTLSecondsAfterFinished *int `yaml:"ttlSecondsAfterFinished"`
		PodFailurePolicy        struct {
			Rules []struct {
				Action      string `yaml:"action"`
				OnExitCodes *struct {
					ContainerName string `yaml:"containerName"`
					Operator      string `yaml:"operator"`
					Values        []int  `yaml:"values"`
				} `yaml:"onExitCodes"`
				OnPodConditions []struct {
					Type string `yaml:"type"`
				} `yaml:"onPodConditions"`
			} `yaml:"rules"`
		} `yaml:"podFailurePolicy"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				RestartPolicy   string `yaml:"restartPolicy"`
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    int   `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name  string   `yaml:"name"`
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string          `yaml:"name"`
					EmptyDir  *map[string]any `yaml:"emptyDir"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readManifest(t *testing.T, name string) []k8sDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../deploy/kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	var docs []k8sDoc
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var d k8sDoc
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs = append(docs, d)
	}
	return docs
}

// repoVersion is the version in VERSION, which the image tag pins.
func repoVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("VERSION %q is not vMAJOR.MINOR.PATCH", v)
	}
	return v
}

// The Kubernetes manifests drive rekey by its command-line contract: the
// workers' Job runs `rekey run --until-cutover` and the cutover Job `rekey
// cutover`, both from one ConfigMap whose keys are flags rekey knows, on a
// shared cosmos:// state. Exit code 2 fails a Job at once, disruptions are
// not counted, other failures are retried; the image is pinned to the
// version in VERSION; pods run as non-root on a read-only root filesystem
// with a writable /tmp, and finished Jobs are cleaned up.
func TestKubernetesManifests(t *testing.T) {
	version := repoVersion(t)
	var config map[string]any
	var configName string
	jobs := map[string]k8sDoc{}
	for _, file := range []string{"job.yaml", "cutover-job.yaml"} {
		for _, d := range readManifest(t, file) {
			switch d.Kind {
			case "ConfigMap":
				configName = d.Metadata.Name
				if err := yaml.Unmarshal([]byte(d.Data["rekey.yaml"]), &config); err != nil {
					t.Fatalf("the ConfigMap's rekey.yaml: %v", err)
				}
			case "Job":
				jobs[file] = d
			}
		}
	}
	if config == nil || len(jobs) != 2 {
		t.Fatalf("manifests: config %v, jobs %d", config, len(jobs))
	}
	if _, _, ok := cosmosState(config["state"].(string)); !ok {
		t.Errorf("the Job's pods must share a cosmos:// state, got %v", config["state"])
	}
	checkScraped(t, jobs["job.yaml"], config)
	if _, ok := config["lease-ttl"]; !ok {
		t.Error("lease-ttl belongs in the ConfigMap: the workers and the cutover must agree on it")
	}
	root := newRootCommand()
	for file, want := range map[string]struct {
		command  string
		flags    []string
		failJob  []int
		retrying bool
	}{
		"job.yaml":         {"run", []string{"--until-cutover"}, []int{2}, true},
		"cutover-job.yaml": {"cutover", nil, []int{1, 2, 3}, false},
	} {
		job := jobs[file]
		pod := job.Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers", file, len(pod.Containers))
		}
		c := pod.Containers[0]
		cmd, rest, err := root.Find(c.Args)
		if err != nil || cmd.Name() != want.command {
			t.Fatalf("%s: args %v do not name rekey %s: %v", file, c.Args, want.command, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%s: args %v: %v", file, c.Args, err)
		}
		for _, f := range want.flags {
			if !slices.Contains(c.Args, f) {
				t.Errorf("%s: args %v lack %s", file, c.Args, f)
			}
		}
		for k := range config {
			if cmd.Flags().Lookup(k) == nil && !isKnownElsewhere(cmd, k) {
				t.Errorf("%s: config key %q is not a flag of rekey", file, k)
			}
		}
		if c.Image != "ghcr.io/rekey-dev/rekey:"+version {
			t.Errorf("%s: image %q, want the version pinned: ghcr.io/rekey-dev/rekey:%s", file, c.Image, version)
		}
		if pod.RestartPolicy != "Never" {
			t.Errorf("%s: restartPolicy %q: podFailurePolicy needs Never", file, pod.RestartPolicy)
		}
		var failJob []int
		ignoresDisruption := false
		for _, r := range job.Spec.PodFailurePolicy.Rules {
			if r.Action == "FailJob" && r.OnExitCodes != nil && r.OnExitCodes.Operator == "In" && r.OnExitCodes.ContainerName == c.Name {
				failJob = append(failJob, r.OnExitCodes.Values...)
			}
			if r.Action == "Ignore" && len(r.OnPodConditions) == 1 && r.OnPodConditions[0].Type == "DisruptionTarget" {
				ignoresDisruption = true
			}
		}
		if !slices.Equal(failJob, want.failJob) || !ignoresDisruption {
			t.Errorf("%s: podFailurePolicy fails the Job on %v (want %v), ignores disruptions: %v", file, failJob, want.failJob, ignoresDisruption)
		}
		if b := job.Spec.BackoffLimit; b == nil || want.retrying && *b < 3 {
			t.Errorf("%s: backoffLimit %v: other failures must be retried", file, b)
		}
		if job.Spec.TTLSecondsAfterFinished == nil {
			t.Errorf("%s: no ttlSecondsAfterFinished", file)
		}
		sc := c.SecurityContext
		if p := pod.SecurityContext.RunAsNonRoot; p == nil || !*p || pod.SecurityContext.RunAsUser == 0 ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: security context %+v / %+v: want non-root, a read-only root filesystem, no privilege escalation", file, pod.SecurityContext, sc)
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
		}
		vols := map[string]bool{}
		for _, v := range pod.Volumes {
			vols[v.Name] = v.EmptyDir != nil || v.ConfigMap != nil && v.ConfigMap.Name == configName
		}
		if !vols[mounts["/tmp"]] || !vols[mounts["/etc/rekey"]] {
			t.Errorf("%s: want /tmp on an emptyDir and /etc/rekey on the ConfigMap %q: mounts %v", file, configName, mounts)
		}
	}
}

// The Dockerfile stamps the binary with the version in VERSION through
// -ldflags -X main.version: built with its flags, rekey version says it.
// The build context leaves out what the image does not need.
func TestDockerfileStampsTheVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	version := repoVersion(t)
	b, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(b)
	m := regexp.MustCompile(`go build .*-ldflags "([^"]*)"`).FindStringSubmatch(dockerfile)
	if m == nil || !strings.Contains(m[1], "-X main.version=${version}") || !strings.Contains(dockerfile, `version="${VERSION:-$(cat VERSION)}"`) {
		t.Fatalf("the Dockerfile does not stamp main.version from VERSION:\n%s", dockerfile)
	}
	bin := filepath.Join(t.TempDir(), "rekey")
	ldflags := strings.ReplaceAll(m[1], "${version}", version)
	// Without the Dockerfile's -trimpath, which would rebuild every package: the
	// stamp is the linker's alone.
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	out, err := exec.CommandContext(context.Background(), bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "rekey "+version+" ") {
		t.Fatalf("the stamped binary says %q (%v), want rekey %s", out, err, version)
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".rekey", "**/*_test.go"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// checkScraped: the workers serve metrics (metrics-addr in the ConfigMap)
// on a port the container declares as "metrics", and their pods carry the
// scrape annotations for that port and path.
func checkScraped(t *testing.T, job k8sDoc, config map[string]any) {
	t.Helper()
	addr, _ := config["metrics-addr"].(string)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("metrics-addr %q in the ConfigMap: %v", addr, err)
	}
	declared := false
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			declared = declared || p.Name == "metrics" && strconv.Itoa(p.ContainerPort) == port
		}
	}
	a := job.Spec.Template.Metadata.Annotations
	if !declared || a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("job.yaml: metrics on port %s: container port named metrics declared %v, pod annotations %v", port, declared, a)
	}
}
