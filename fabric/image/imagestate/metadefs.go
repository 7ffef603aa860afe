package imagestate

import (
	"maps"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// The metadata definitions catalog (Glance's metadefs): namespaces of
// property, object and tag definitions that clients (Horizon's "Update
// Metadata" dialogs) offer for images, flavors, volumes... A namespace is
// one row, its objects, properties, tags and resource type associations
// inside it, as an image holds its members: a namespace is small, and
// every change to it is then one revision-checked command.

// Namespace visibilities.
const (
	NamespacePublic  = "public"
	NamespacePrivate = "private"
)

// Namespace is one metadata definition namespace. Its name is unique in
// the cloud and may change (a PUT renames it); ID never does.
type Namespace struct {
	ID          string `json:"id"`
	Name        string `json:"namespace"`
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	Visibility  string `json:"visibility"`
	Protected   bool   `json:"protected"`
	Owner       string `json:"owner"` // project id
	// Associations are the resource types the namespace applies to.
	Associations []Association           `json:"resource_type_associations,omitempty"`
	Properties   map[string]MetaProperty `json:"properties,omitempty"`
	Objects      []MetaObject            `json:"objects,omitempty"`
	Tags         []MetaTag               `json:"tags,omitempty"`
	CreatedAt    time.Time               `json:"created_at"`
	UpdatedAt    time.Time               `json:"updated_at"`
	Revision     int64                   `json:"revision"`
}

// Association ties a namespace to a resource type (OS::Glance::Image...):
// Prefix is put before its property names on that resource type, and
// PropertiesTarget names where they go (Cinder's "image" or "volume"
// metadata...).
type Association struct {
	Name             string    `json:"name"`
	Prefix           string    `json:"prefix,omitempty"`
	PropertiesTarget string    `json:"properties_target,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// MetaProperty is the definition of one property: a JSON schema fragment.
type MetaProperty struct {
	Title           string     `json:"title"`
	Type            string     `json:"type"`
	Description     string     `json:"description,omitempty"`
	Default         any        `json:"default,omitempty"`
	Enum            []any      `json:"enum,omitempty"`
	Items           *MetaItems `json:"items,omitempty"`
	Minimum         *float64   `json:"minimum,omitempty"`
	Maximum         *float64   `json:"maximum,omitempty"`
	MinLength       *int       `json:"minLength,omitempty"`
	MaxLength       *int       `json:"maxLength,omitempty"`
	Pattern         string     `json:"pattern,omitempty"`
	ReadOnly        *bool      `json:"readonly,omitempty"`
	UniqueItems     *bool      `json:"uniqueItems,omitempty"`
	MinItems        *int       `json:"minItems,omitempty"`
	MaxItems        *int       `json:"maxItems,omitempty"`
	AdditionalItems *bool      `json:"additionalItems,omitempty"`
	Operators       []string   `json:"operators,omitempty"`
}

// MetaItems describes the elements of an array property.
type MetaItems struct {
	Type string `json:"type,omitempty"`
	Enum []any  `json:"enum,omitempty"`
}

// MetaObject is a named group of property definitions.
type MetaObject struct {
	Name        string                  `json:"name"`
	Description string                  `json:"description,omitempty"`
	Required    []string                `json:"required,omitempty"`
	Properties  map[string]MetaProperty `json:"properties,omitempty"`
	CreatedAt   time.Time               `json:"created_at"`
	UpdatedAt   time.Time               `json:"updated_at"`
}

// MetaTag is a tag definition.
type MetaTag struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Clone copies the row deeply enough that changing the copy's lists and
// maps leaves the stored row alone (definitions are replaced whole, never
// changed in place).
func (ns *Namespace) Clone() *Namespace {
	c := *ns
	c.Associations = slices.Clone(ns.Associations)
	c.Properties = maps.Clone(ns.Properties)
	c.Objects = slices.Clone(ns.Objects)
	c.Tags = slices.Clone(ns.Tags)
	return &c
}

// Table and commands of the catalog.
const (
	NamespaceTable = "image_metadef_namespaces"

	CmdNamespaceCreate = "image.metadef.create"
	CmdNamespacePut    = "image.metadef.put"
	CmdNamespaceDelete = "image.metadef.delete"
)

func namespaceTable() store.Table {
	return store.NewTable(NamespaceTable, &Namespace{}, store.StringIndex("name", "Name", true))
}

// NamespaceByName returns the namespace called name, or nil.
func NamespaceByName(tx *memdb.Txn, name string) *Namespace {
	raw, _ := tx.First(NamespaceTable, "name", name)
	if raw == nil {
		return nil
	}
	return raw.(*Namespace)
}

func namespaceExists(name string) error {
	return store.Conflictf("Metadata definition namespace=%s already exists.", name)
}

// NamespaceCreateCmd inserts a new namespace.
type NamespaceCreateCmd struct {
	Row Namespace `json:"row"`
}

func applyNamespaceCreate(tx *memdb.Txn, c NamespaceCreateCmd) (any, error) {
	if c.Row.ID == "" || c.Row.Name == "" {
		return nil, store.Invalidf("a namespace needs an id and a name")
	}
	if store.Get[Namespace](tx, NamespaceTable, c.Row.ID) != nil || NamespaceByName(tx, c.Row.Name) != nil {
		return nil, namespaceExists(c.Row.Name)
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(NamespaceTable, &row)
}

// NamespacePutCmd replaces a namespace whose current revision is
// Revision; a new name must be free.
type NamespacePutCmd struct {
	Row      Namespace `json:"row"`
	Revision int64     `json:"revision"`
}

func applyNamespacePut(tx *memdb.Txn, c NamespacePutCmd) (any, error) {
	cur := store.Get[Namespace](tx, NamespaceTable, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("Metadata definition namespace=%s was not found.", c.Row.Name)
	}
	if cur.Revision != c.Revision {
		return nil, store.Fault(store.KindConflict, faultStale, "%s: namespace %s is at revision %d, not %d", staleMsg, cur.Name, cur.Revision, c.Revision)
	}
	if c.Row.Name == "" {
		return nil, store.Invalidf("a namespace needs a name")
	}
	if other := NamespaceByName(tx, c.Row.Name); other != nil && other.ID != cur.ID {
		return nil, namespaceExists(c.Row.Name)
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	return row, tx.Insert(NamespaceTable, &row)
}

// NamespaceDeleteCmd deletes a namespace, and all it defines, whose
// current revision is Revision.
type NamespaceDeleteCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyNamespaceDelete(tx *memdb.Txn, c NamespaceDeleteCmd) (any, error) {
	cur := store.Get[Namespace](tx, NamespaceTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Metadata definition namespace=%s was not found.", c.ID)
	}
	if cur.Revision != c.Revision {
		return nil, store.Fault(store.KindConflict, faultStale, "%s: namespace %s is at revision %d, not %d", staleMsg, cur.Name, cur.Revision, c.Revision)
	}
	if cur.Protected {
		return nil, store.Forbiddenf("Namespace %s is protected and cannot be deleted.", cur.Name)
	}
	return cur, tx.Delete(NamespaceTable, cur)
}
