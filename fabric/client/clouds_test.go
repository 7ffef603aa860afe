package client

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFromCloudsYAML(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "clouds.yaml")
	os.WriteFile(file, []byte(`clouds:
  rack:
    auth:
      auth_url: http://10.0.0.1:8770/identity/v3
      username: admin
      project_name: admin
      domain_name: Default
    region_name: RegionOne
  tok:
    auth:
      auth_url: http://10.0.0.2:8770/identity/v3
      token: abc
`), 0o600)
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if k == "OS_CLIENT_CONFIG_FILE" {
				return file
			}
			return extra[k]
		}
	}
	tests := map[string]struct {
		name    string
		env     map[string]string
		want    Config
		wantErr error
	}{
		"password from the environment": {name: "rack", env: map[string]string{"OS_PASSWORD": "pw"},
			want: Config{AuthURL: "http://10.0.0.1:8770/identity/v3", Username: "admin", Password: "pw", ProjectName: "admin", UserDomain: "Default", ProjectDomain: "Default"}},
		"token":        {name: "tok", want: Config{AuthURL: "http://10.0.0.2:8770/identity/v3", Token: "abc"}},
		"unknown name": {name: "other", wantErr: ErrNoCloud},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := FromCloudsYAML(tc.name, env(tc.env))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := FromCloudsYAML("rack", env(nil)); err == nil {
		t.Fatal("a cloud without a password and no OS_PASSWORD was accepted")
	}
}
