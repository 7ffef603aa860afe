package baremetal

import (
	"net/http"
	"slices"

	"github.com/rackstack/rackstack/fabric/api"
)

// Management calls a hardware type may offer and this cloud's conductor
// does not carry out: an NMI, the boot mode and secure boot, and the
// chassis indicators. Recording such a request would leave it pending
// for ever (no conductor would act on it), so each is refused the way
// Ironic refuses a call its driver does not implement: 400
// UnsupportedDriverExtension, naming the driver and the call. The node
// is looked up and the body checked first, as Ironic does before it
// asks the conductor.

func unsupportedExtension(driver, extension string) error {
	return badRequestf("Driver %s does not support %s (disabled or not implemented).", driver, extension)
}

// injectNMI is PUT /v1/nodes/{node}/management/inject_nmi (1.29).
func (s *Service) injectNMI(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	return unsupportedExtension(n.Driver, "inject_nmi")
}

// listIndicators is GET /v1/nodes/{node}/management/indicators (1.63).
func (s *Service) listIndicators(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	return unsupportedExtension(n.Driver, "get_supported_indicators")
}

// bootModes are the boot mode targets Ironic accepts (1.76).
var bootModes = []string{"uefi", "bios"}

// setBootMode is PUT /v1/nodes/{node}/states/boot_mode (1.76).
func (s *Service) setBootMode(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	if t, _ := body["target"].(string); !slices.Contains(bootModes, t) {
		return wording{}.BadField("target", body["target"], "Invalid boot mode: it must be uefi or bios.")
	}
	return unsupportedExtension(n.Driver, "set_boot_mode")
}

// setSecureBoot is PUT /v1/nodes/{node}/states/secure_boot (1.76).
func (s *Service) setSecureBoot(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	if _, ok := body["target"].(bool); !ok {
		return wording{}.BadField("target", body["target"], "Invalid secure boot state: it must be true or false.")
	}
	return unsupportedExtension(n.Driver, "set_secure_boot_state")
}
