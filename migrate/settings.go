package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ContainerSettings are a container's properties other than its id, its
// partition key and the service's system properties, as the service
// returns them: raw JSON by property name (defaultTtl, indexingPolicy,
// uniqueKeyPolicy, computedProperties, ...). docs/container-settings.md
// says which rekey carries to a target it creates.
type ContainerSettings map[string]json.RawMessage

// How --unique-keys treats a source's unique key policy.
const (
	UniqueKeysCopy = "copy"
	UniqueKeysDrop = "drop"
)

// Errors of CarrySettings, decided with errors.Is.
var (
	// ErrUniqueKeysUndecided: the source has unique keys and the caller did
	// not say whether to copy or drop them.
	ErrUniqueKeysUndecided = errors.New("the source has a unique key policy")
	// ErrSettingNotCarried: the source has a setting rekey cannot carry to
	// the target, and the caller did not say to drop it.
	ErrSettingNotCarried = errors.New("the source has a setting that cannot be carried to the target")
)

// SettingsChoice is what the user decided about the settings rekey does
// not carry on its own.
type SettingsChoice struct {
	// UniqueKeys is UniqueKeysCopy or UniqueKeysDrop; required when the
	// source has unique keys.
	UniqueKeys string
	// Drop names settings to leave out of the target: those rekey cannot
	// carry, and any other the user does not want.
	Drop []string
}

// Validate names a bad choice.
func (c SettingsChoice) Validate() error {
	if c.UniqueKeys != "" && c.UniqueKeys != UniqueKeysCopy && c.UniqueKeys != UniqueKeysDrop {
		return fmt.Errorf("--unique-keys %q: want copy or drop", c.UniqueKeys)
	}
	return nil
}

// CarriedSetting is one setting of the source and what becomes of it.
type CarriedSetting struct {
	Name    string          `json:"name"`
	Value   json.RawMessage `json:"value"`
	Carried bool            `json:"carried"`
	// Note says what the setting means in the target, or why it is not
	// carried and what to pass.
	Note string `json:"note,omitempty"`
	// Blocks: the target cannot be created until the user decides
	// (--unique-keys, --drop-setting).
	Blocks bool `json:"blocks,omitempty"`
}

// SettingsPlan is what a target created from a source gets of its
// settings.
type SettingsPlan struct {
	Settings []CarriedSetting `json:"settings"`
}

// Carried is the settings the target is created with.
func (p SettingsPlan) Carried() ContainerSettings {
	out := ContainerSettings{}
	for _, s := range p.Settings {
		if s.Carried {
			out[s.Name] = s.Value
		}
	}
	return out
}

// Err is the first setting that blocks the target's creation, with what to
// pass; nil when none does.
func (p SettingsPlan) Err() error {
	var msgs []string
	var unique bool
	for _, s := range p.Settings {
		if !s.Blocks {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s %s: %s", s.Name, compactSetting(s.Value), s.Note))
		unique = unique || s.Name == settingUniqueKeyPolicy
	}
	if len(msgs) == 0 {
		return nil
	}
	sentinel := ErrSettingNotCarried
	if unique && len(msgs) == 1 {
		sentinel = ErrUniqueKeysUndecided
	}
	return fmt.Errorf("%w: %s", sentinel, strings.Join(msgs, "; "))
}

// Property names of a container's settings (the REST API's).
const (
	settingUniqueKeyPolicy   = "uniqueKeyPolicy"
	settingConflictPolicy    = "conflictResolutionPolicy"
	settingClientEncryption  = "clientEncryptionPolicy"
	conflictModeLastWriter   = "LastWriterWins"
	conflictModeCustom       = "Custom"
	uniqueKeysMeaningChanges = "a unique key is unique only within a logical partition: in the source each value is unique per %s, in the target per %s"
)

// carriedAsIs are the settings a target created by rekey gets as the
// source has them: each is a property of the container definition the
// service takes at creation.
var carriedAsIs = map[string]string{
	"defaultTtl":            "items expire as in the source",
	"indexingPolicy":        "the same indexes (the new key path needs none)",
	"computedProperties":    "the same computed properties",
	"geospatialConfig":      "",
	"analyticalStorageTtl":  "the target gets an analytical store of its own (Azure Synapse Link must be on for the account)",
	"changeFeedPolicy":      "",
	"vectorEmbeddingPolicy": "",
	"fullTextPolicy":        "",
}

// ignoredSettings are properties of the definition that are not settings:
// the container's identity, its key (the migration's to set) and the
// system properties the service adds.
var ignoredSettings = []string{"id", "partitionKey", "_rid", "_ts", "_self", "_etag", "_docs", "_sprocs", "_triggers", "_udfs", "_conflicts"}

// IsContainerSetting reports whether a property of a container's
// definition is a setting (ContainerSettings), not its identity, its key
// or a system property.
func IsContainerSetting(name string) bool { return !slices.Contains(ignoredSettings, name) }

// CarrySettings decides what a target created from a source with settings
// src gets: the settings rekey carries as they are, the unique keys as
// choice says, nothing of what choice drops. A unique key policy without a
// choice, or a setting rekey cannot carry that choice does not drop,
// blocks the creation (SettingsPlan.Err). sourcePaths and targetPaths are
// the two containers' key paths, to say what a copied unique key means.
func CarrySettings(src ContainerSettings, choice SettingsChoice, sourcePaths, targetPaths []string) SettingsPlan {
	names := make([]string, 0, len(src))
	for name := range src {
		if IsContainerSetting(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var p SettingsPlan
	for _, name := range names {
		s := CarriedSetting{Name: name, Value: src[name]}
		dropped := slices.Contains(choice.Drop, name)
		switch note, ok := carriedAsIs[name]; {
		case dropped:
			s.Note = "dropped (--drop-setting)"
		case ok:
			s.Carried, s.Note = true, note
		case name == settingUniqueKeyPolicy:
			s = uniqueKeys(s, choice.UniqueKeys, sourcePaths, targetPaths)
		case name == settingConflictPolicy:
			s = conflictPolicy(s)
		case name == settingClientEncryption:
			s.Blocks = true
			s.Note = "Always Encrypted paths and their keys belong to the source's database and application: rekey cannot carry them; create the target yourself, or pass --drop-setting " + name
		default:
			s.Blocks = true
			s.Note = "rekey does not know this setting, so it cannot carry it: create the target yourself, or pass --drop-setting " + name
		}
		if !s.Blocks && !s.Carried && s.Note == "" {
			continue
		}
		p.Settings = append(p.Settings, s)
	}
	return p
}

// uniqueKeys decides a unique key policy: carried, dropped, or blocking
// until --unique-keys says. A policy without unique keys is carried.
func uniqueKeys(s CarriedSetting, choice string, sourcePaths, targetPaths []string) CarriedSetting {
	var policy struct {
		UniqueKeys []struct {
			Paths []string `json:"paths"`
		} `json:"uniqueKeys"`
	}
	if err := json.Unmarshal(s.Value, &policy); err != nil {
		s.Blocks, s.Note = true, fmt.Sprintf("it does not parse (%v): pass --drop-setting %s", err, s.Name)
		return s
	}
	if len(policy.UniqueKeys) == 0 {
		s.Carried = true
		return s
	}
	var keys []string
	for _, k := range policy.UniqueKeys {
		keys = append(keys, strings.Join(k.Paths, "+"))
	}
	per := func(paths []string) string {
		return "(" + strings.Join(paths, ", ") + ", " + strings.Join(keys, " | ") + ")"
	}
	meaning := fmt.Sprintf(uniqueKeysMeaningChanges, per(sourcePaths), per(targetPaths))
	switch choice {
	case UniqueKeysCopy:
		s.Carried, s.Note = true, "copied (--unique-keys copy): "+meaning+"; an item the target refuses for it is dead-lettered"
	case UniqueKeysDrop:
		s.Note = "dropped (--unique-keys drop): the target enforces no uniqueness; " + meaning
	default:
		s.Blocks, s.Note = true, meaning+": pass --unique-keys copy to keep them under that meaning, or --unique-keys drop"
	}
	return s
}

// conflictPolicy carries a last-writer-wins conflict resolution policy;
// a custom one runs a stored procedure of the source, which rekey does not
// copy.
func conflictPolicy(s CarriedSetting) CarriedSetting {
	var policy struct {
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal(s.Value, &policy); err == nil && (policy.Mode == conflictModeLastWriter || policy.Mode == "") {
		s.Carried = true
		return s
	}
	s.Blocks = true
	s.Note = fmt.Sprintf("mode %q resolves conflicts with a stored procedure of the source, which rekey does not copy: create the target yourself, or pass --drop-setting %s", conflictModeCustom, s.Name)
	return s
}

// compactSetting is a setting's value on one line, shortened.
func compactSetting(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	if b.Len() > 200 {
		return b.String()[:200] + "..."
	}
	return b.String()
}
