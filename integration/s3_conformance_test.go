//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestS3Conformance drives the S3 operations SDKs and tools call beside
// plain reads and writes, on a real rackd with the real aws CLI and
// minio-go: UploadPartCopy (by hand, by `aws s3 cp` of a large object
// between buckets, and by minio-go's ComposeObject), ACLs (read, owner-only
// writes taken, grants refused) and object tagging.
func TestS3Conformance(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/aws")
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := newStorageNode(t, "n1", 3)
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	home := t.TempDir()
	alice, bob := twoTenants(t, n.rackd, creds, home)
	aliceOS := alice.OS
	endpoint := "http://" + n.s3
	dir := t.TempDir()
	awsAs := func(c tenant, args ...string) (string, error) {
		return tool(c.awsEnv(home), dir, "/usr/bin/aws", append([]string{"--endpoint-url", endpoint}, args...)...)
	}
	aws := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := awsAs(alice, args...)
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// refused runs an aws command that must fail with code in its output.
	refused := func(t *testing.T, c tenant, code string, args ...string) {
		t.Helper()
		out, err := awsAs(c, args...)
		if err == nil || !strings.Contains(out, code) {
			t.Errorf("aws %s: want %s, got %v:\n%s", strings.Join(args, " "), code, err, out)
		}
	}
	decode := func(t *testing.T, out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("decode %q: %v", out, err)
		}
	}
	// download fetches bucket/key and returns its sha256.
	download := func(t *testing.T, bucket, key string) string {
		t.Helper()
		path := filepath.Join(dir, "got")
		os.Remove(path)
		aws(t, "s3api", "get-object", "--bucket", bucket, "--key", key, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha(b)
	}

	aws(t, "s3", "mb", "s3://src")
	aws(t, "s3", "mb", "s3://dst")
	const big = 20 << 20 // above the CLI's 8 MiB multipart threshold
	data := make([]byte, big)
	rand.Read(data)
	os.WriteFile(filepath.Join(dir, "big"), data, 0o644)
	aws(t, "s3api", "put-object", "--bucket", "src", "--key", "big", "--body", "big", "--tagging", "origin=src&kind=random%20bytes")

	t.Run("upload-part-copy", func(t *testing.T) {
		var up struct{ UploadId string }
		decode(t, aws(t, "s3api", "create-multipart-upload", "--bucket", "dst", "--key", "joined"), &up)
		half := int64(big / 2)
		var etags []string
		for i, rng := range []string{fmt.Sprintf("bytes=%d-%d", half, big-1), fmt.Sprintf("bytes=0-%d", half-1)} {
			var res struct {
				CopyPartResult struct{ ETag, LastModified string }
			}
			decode(t, aws(t, "s3api", "upload-part-copy", "--bucket", "dst", "--key", "joined", "--upload-id", up.UploadId,
				"--part-number", fmt.Sprint(i+1), "--copy-source", "src/big", "--copy-source-range", rng), &res)
			if res.CopyPartResult.ETag == "" || res.CopyPartResult.LastModified == "" {
				t.Fatalf("part %d: CopyPartResult %+v", i+1, res)
			}
			etags = append(etags, res.CopyPartResult.ETag)
		}
		refused(t, alice, "InvalidRange", "s3api", "upload-part-copy", "--bucket", "dst", "--key", "joined", "--upload-id", up.UploadId,
			"--part-number", "3", "--copy-source", "src/big", "--copy-source-range", fmt.Sprintf("bytes=0-%d", big))
		refused(t, alice, "InvalidArgument", "s3api", "upload-part-copy", "--bucket", "dst", "--key", "joined", "--upload-id", up.UploadId,
			"--part-number", "3", "--copy-source", "src/big", "--copy-source-range", "bytes=5-")
		refused(t, alice, "PreconditionFailed", "s3api", "upload-part-copy", "--bucket", "dst", "--key", "joined", "--upload-id", up.UploadId,
			"--part-number", "3", "--copy-source", "src/big", "--copy-source-if-match", `"0123"`)
		parts, _ := json.Marshal(map[string]any{"Parts": []map[string]any{{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": etags[1]}}})
		aws(t, "s3api", "complete-multipart-upload", "--bucket", "dst", "--key", "joined", "--upload-id", up.UploadId, "--multipart-upload", string(parts))
		swapped := append(append([]byte{}, data[half:]...), data[:half]...)
		if got := download(t, "dst", "joined"); got != sha(swapped) {
			t.Fatalf("the object of two copied parts differs from the source's halves swapped")
		}
		// bob cannot copy alice's object into an upload of his own: in
		// his project there is no bucket src.
		var bup struct{ UploadId string }
		out, err := awsAs(bob, "s3", "mb", "s3://bobs")
		if err != nil {
			t.Fatalf("bob's bucket: %v %s", err, out)
		}
		out, err = awsAs(bob, "s3api", "create-multipart-upload", "--bucket", "bobs", "--key", "stolen")
		if err != nil {
			t.Fatalf("bob's upload: %v %s", err, out)
		}
		decode(t, out, &bup)
		refused(t, bob, "NoSuchBucket", "s3api", "upload-part-copy", "--bucket", "bobs", "--key", "stolen", "--upload-id", bup.UploadId,
			"--part-number", "1", "--copy-source", "src/big")
	})

	t.Run("aws s3 cp between buckets", func(t *testing.T) {
		// 20 MiB is copied in parts (UploadPartCopy); the CLI copies the
		// source's tags as well.
		out := aws(t, "--debug", "s3", "cp", "s3://src/big", "s3://dst/copied")
		if !strings.Contains(out, "UploadPartCopy") {
			t.Errorf("aws s3 cp of %d bytes did not copy in parts", big)
		}
		if got := download(t, "dst", "copied"); got != sha(data) {
			t.Fatal("aws s3 cp between buckets: the copy differs")
		}
		var tags struct{ TagSet []struct{ Key, Value string } }
		decode(t, aws(t, "s3api", "get-object-tagging", "--bucket", "dst", "--key", "copied"), &tags)
		if len(tags.TagSet) != 2 {
			t.Errorf("tags of the copy: %+v", tags.TagSet)
		}
	})

	t.Run("minio-go ComposeObject", func(t *testing.T) {
		mc, err := minio.New(n.s3, &minio.Options{Creds: credentials.NewStaticV4(alice.Access, alice.Secret, ""), Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		tail := []byte("and a small tail")
		if _, err := mc.PutObject(ctx, "src", "tail", bytes.NewReader(tail), int64(len(tail)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		info, err := mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "dst", Object: "composed"},
			minio.CopySrcOptions{Bucket: "src", Object: "big", MatchRange: true, Start: 1 << 20, End: 7<<20 - 1},
			minio.CopySrcOptions{Bucket: "src", Object: "tail"})
		if err != nil {
			t.Fatalf("ComposeObject: %v", err)
		}
		obj, err := mc.GetObject(ctx, "dst", "composed", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([]byte{}, data[1<<20:7<<20]...), tail...)
		if !bytes.Equal(got, want) || info.Size != int64(len(want)) {
			t.Fatalf("composed object: %d bytes (info %d), want %d; equal %v", len(got), info.Size, len(want), bytes.Equal(got, want))
		}
	})

	t.Run("acl", func(t *testing.T) {
		type policy struct {
			Owner  struct{ ID, DisplayName string }
			Grants []struct {
				Grantee    struct{ Type, ID, URI string }
				Permission string
			}
		}
		var owner struct {
			Owner struct{ ID, DisplayName string }
		}
		decode(t, aws(t, "s3api", "list-buckets"), &owner)
		for _, args := range [][]string{{"get-bucket-acl", "--bucket", "dst"}, {"get-object-acl", "--bucket", "dst", "--key", "joined"}} {
			var p policy
			decode(t, aws(t, append([]string{"s3api"}, args...)...), &p)
			if p.Owner != owner.Owner || p.Owner.ID != alice.ProjectID || len(p.Grants) != 1 ||
				p.Grants[0].Grantee.Type != "CanonicalUser" || p.Grants[0].Grantee.ID != alice.ProjectID || p.Grants[0].Permission != "FULL_CONTROL" {
				t.Errorf("%s: %+v (ListBuckets owner %+v)", args[0], p, owner.Owner)
			}
		}
		aws(t, "s3api", "put-object-acl", "--bucket", "dst", "--key", "joined", "--acl", "private")
		aws(t, "s3api", "put-bucket-acl", "--bucket", "dst", "--acl", "private")
		refused(t, alice, "NotImplemented", "s3api", "put-object-acl", "--bucket", "dst", "--key", "joined", "--acl", "public-read")
		refused(t, alice, "NotImplemented", "s3api", "put-bucket-acl", "--bucket", "dst", "--acl", "public-read-write")
		refused(t, alice, "NotImplemented", "s3api", "put-object-acl", "--bucket", "dst", "--key", "joined", "--grant-read", "uri=http://acs.amazonaws.com/groups/global/AllUsers")
		refused(t, alice, "NotImplemented", "s3", "cp", "s3://src/tail", "s3://dst/public", "--acl", "public-read")
		refused(t, alice, "404", "s3api", "head-object", "--bucket", "dst", "--key", "public")
		refused(t, bob, "NoSuchBucket", "s3api", "get-bucket-acl", "--bucket", "dst")
		// Nothing was made public: still the owner alone.
		var p policy
		decode(t, aws(t, "s3api", "get-object-acl", "--bucket", "dst", "--key", "joined"), &p)
		if len(p.Grants) != 1 {
			t.Errorf("grants after refusals: %+v", p.Grants)
		}
	})

	t.Run("tagging", func(t *testing.T) {
		type tagSet struct{ TagSet []struct{ Key, Value string } }
		aws(t, "s3api", "put-object-tagging", "--bucket", "dst", "--key", "joined", "--tagging", "TagSet=[{Key=team,Value=storage},{Key=stage,Value=test}]")
		var ts tagSet
		decode(t, aws(t, "s3api", "get-object-tagging", "--bucket", "dst", "--key", "joined"), &ts)
		if len(ts.TagSet) != 2 || ts.TagSet[0].Key != "stage" || ts.TagSet[1].Value != "storage" {
			t.Errorf("get-object-tagging: %+v", ts.TagSet)
		}
		var head struct{ TagCount int }
		decode(t, aws(t, "s3api", "get-object", "--bucket", "dst", "--key", "joined", filepath.Join(dir, "got")), &head)
		if head.TagCount != 2 {
			t.Errorf("get-object TagCount %d, want 2", head.TagCount)
		}
		var eleven []string
		for i := range 11 {
			eleven = append(eleven, fmt.Sprintf("{Key=k%d,Value=v}", i))
		}
		refused(t, alice, "InvalidTag", "s3api", "put-object-tagging", "--bucket", "dst", "--key", "joined", "--tagging", "TagSet=["+strings.Join(eleven, ",")+"]")
		refused(t, alice, "InvalidTag", "s3api", "put-object-tagging", "--bucket", "dst", "--key", "joined", "--tagging", "TagSet=[{Key="+strings.Repeat("k", 129)+",Value=v}]")
		refused(t, alice, "InvalidTag", "s3api", "put-object", "--bucket", "dst", "--key", "dup", "--tagging", "a=1&a=2")
		refused(t, bob, "NoSuchBucket", "s3api", "get-object-tagging", "--bucket", "dst", "--key", "joined")
		aws(t, "s3api", "delete-object-tagging", "--bucket", "dst", "--key", "joined")
		ts = tagSet{}
		decode(t, aws(t, "s3api", "get-object-tagging", "--bucket", "dst", "--key", "joined"), &ts)
		if len(ts.TagSet) != 0 {
			t.Errorf("tags after delete-object-tagging: %+v", ts.TagSet)
		}
		// Bucket tags, kept across a Swift metadata write of the
		// container.
		refused(t, alice, "NoSuchTagSet", "s3api", "get-bucket-tagging", "--bucket", "dst")
		aws(t, "s3api", "put-bucket-tagging", "--bucket", "dst", "--tagging", "TagSet=[{Key=cost-center,Value=42}]")
		openstack(t, aliceOS, "container", "set", "--property", "color=blue", "dst")
		ts = tagSet{}
		decode(t, aws(t, "s3api", "get-bucket-tagging", "--bucket", "dst"), &ts)
		if len(ts.TagSet) != 1 || ts.TagSet[0].Key != "cost-center" || ts.TagSet[0].Value != "42" {
			t.Errorf("get-bucket-tagging: %+v", ts.TagSet)
		}
		aws(t, "s3api", "delete-bucket-tagging", "--bucket", "dst")
		refused(t, alice, "NoSuchTagSet", "s3api", "get-bucket-tagging", "--bucket", "dst")
	})
}
