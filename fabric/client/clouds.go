package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// ErrNoCloud is returned when clouds.yaml has no cloud of the name asked.
var ErrNoCloud = errors.New("no such cloud in clouds.yaml")

// cloudsFile is the part of clouds.yaml (openstacksdk's format) a client
// needs: password or token auth against Keystone v3.
type cloudsFile struct {
	Clouds map[string]struct {
		Auth struct {
			AuthURL           string `yaml:"auth_url"`
			Username          string `yaml:"username"`
			Password          string `yaml:"password"`
			ProjectName       string `yaml:"project_name"`
			UserDomainName    string `yaml:"user_domain_name"`
			ProjectDomainName string `yaml:"project_domain_name"`
			DomainName        string `yaml:"domain_name"`
			Token             string `yaml:"token"`
		} `yaml:"auth"`
	} `yaml:"clouds"`
}

// CloudsPaths are where openstacksdk looks for clouds.yaml, first match
// wins: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/,
// /etc/openstack/.
func CloudsPaths(getenv func(string) string) []string {
	var out []string
	if p := getenv("OS_CLIENT_CONFIG_FILE"); p != "" {
		out = append(out, p)
	}
	out = append(out, "clouds.yaml")
	if home := getenv("HOME"); home != "" {
		out = append(out, filepath.Join(home, ".config", "openstack", "clouds.yaml"))
	}
	return append(out, "/etc/openstack/clouds.yaml")
}

// FromCloudsYAML reads the cloud called name from the first clouds.yaml
// of CloudsPaths, as `openstack --os-cloud NAME` does. OS_PASSWORD, when
// set, fills a password the file leaves out (secure.yaml is not read).
func FromCloudsYAML(name string, getenv func(string) string) (Config, error) {
	for _, p := range CloudsPaths(getenv) {
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Config{}, fmt.Errorf("read clouds.yaml: %w", err)
		}
		return parseClouds(raw, p, name, getenv)
	}
	return Config{}, fmt.Errorf("find cloud %q: %w (looked in %v)", name, ErrNoCloud, CloudsPaths(getenv))
}

func parseClouds(raw []byte, path, name string, getenv func(string) string) (Config, error) {
	var f cloudsFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", path, err)
	}
	c, ok := f.Clouds[name]
	if !ok {
		return Config{}, fmt.Errorf("find cloud %q in %s: %w", name, path, ErrNoCloud)
	}
	a := c.Auth
	cfg := Config{AuthURL: a.AuthURL, Username: a.Username, Password: a.Password, ProjectName: a.ProjectName,
		UserDomain: a.UserDomainName, ProjectDomain: a.ProjectDomainName, Token: a.Token}
	if cfg.UserDomain == "" {
		cfg.UserDomain = a.DomainName
	}
	if cfg.ProjectDomain == "" {
		cfg.ProjectDomain = a.DomainName
	}
	if cfg.Password == "" {
		cfg.Password = getenv("OS_PASSWORD")
	}
	switch {
	case cfg.AuthURL == "":
		return Config{}, fmt.Errorf("cloud %q in %s: auth.auth_url is not set", name, path)
	case cfg.Token == "" && (cfg.Username == "" || cfg.Password == "" || cfg.ProjectName == ""):
		return Config{}, fmt.Errorf("cloud %q in %s: auth needs username, password and project_name (or token)", name, path)
	}
	return cfg, nil
}
