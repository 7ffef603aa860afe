package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ring(t *testing.T) (*Keyring, Key) {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

func TestSealOpen(t *testing.T) {
	r, _ := ring(t)
	other, _ := ring(t)
	sealed, err := r.Seal([]byte("s3cr3t-value"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "s3cr3t") || !Sealed(sealed) {
		t.Fatalf("sealed value %q shows the secret or lacks the prefix", sealed)
	}
	again, _ := r.Seal([]byte("s3cr3t-value"), []byte("row-1"))
	if again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	tests := map[string]struct {
		ring    *Keyring
		value   string
		aad     string
		want    string
		wantErr error
	}{
		"sealed":                {ring: r, value: sealed, aad: "row-1", want: "s3cr3t-value"},
		"plaintext passes":      {ring: r, value: `{"access":"a","secret":"b"}`, aad: "row-1", want: `{"access":"a","secret":"b"}`},
		"moved to another row":  {ring: r, value: sealed, aad: "row-2", wantErr: errAny},
		"another cluster's key": {ring: other, value: sealed, aad: "row-1", wantErr: ErrWrongKey},
		"no key":                {ring: &Keyring{}, value: sealed, aad: "row-1", wantErr: ErrNoKey},
		"truncated":             {ring: r, value: sealed[:len(sealed)-4], aad: "row-1", wantErr: errAny},
		"malformed":             {ring: r, value: prefix + "nokey", aad: "row-1", wantErr: errAny},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.ring.Open(tc.value, []byte(tc.aad))
			switch {
			case tc.wantErr == nil && (err != nil || string(got) != tc.want):
				t.Fatalf("Open = %q, %v; want %q", got, err, tc.want)
			case tc.wantErr == errAny && err == nil:
				t.Fatalf("Open = %q, want an error", got)
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("Open error %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := (&Keyring{}).Seal([]byte("x"), nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without a key: %v, want ErrNoKey", err)
	}
}

var errAny = errors.New("any error")

func TestSaveLoadKeepsTheKeyPrivate(t *testing.T) {
	dir := t.TempDir()
	path := Path(dir)
	if _, err := Load(path); !errors.Is(err, ErrNoKey) {
		t.Fatalf("load before save: %v", err)
	}
	k, _ := NewKey()
	if err := Save(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v, want 0700", st.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil || got.ID != k.ID || string(got.Secret) != string(k.Secret) {
		t.Fatalf("load = %+v, %v", got, err)
	}
}
