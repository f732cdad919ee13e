package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Kubernetes manifest drives rekey by its command-line contract: its
// arguments and the keys of its config file must be flags rekey knows, or a
// Job would fail at start.
func TestKubernetesManifestUsesKnownFlags(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	var config map[string]any
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var doc struct {
			Kind string `yaml:"kind"`
			Data map[string]string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args []string `yaml:"args"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		switch doc.Kind {
		case "ConfigMap":
			if err := yaml.Unmarshal([]byte(doc.Data["rekey.yaml"]), &config); err != nil {
				t.Fatalf("the ConfigMap's rekey.yaml: %v", err)
			}
		case "Job":
			args = doc.Spec.Template.Spec.Containers[0].Args
		}
	}
	if len(args) == 0 || config == nil {
		t.Fatalf("manifest: args %v, config %v", args, config)
	}
	root := newRootCommand()
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != "run" {
		t.Fatalf("args %v do not name rekey run: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("args %v: %v", args, err)
	}
	for k := range config {
		if cmd.Flags().Lookup(k) == nil && root.PersistentFlags().Lookup(k) == nil {
			t.Errorf("config key %q is not a flag of rekey run", k)
		}
	}
	if _, _, ok := cosmosState(config["state"].(string)); !ok {
		t.Errorf("the Job's pods must share a cosmos:// state, got %v", config["state"])
	}
}
