package baremetal

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

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

// indicatorState is GET and PUT of
// /v1/nodes/{node}/management/indicators/{indicator} (1.63).
func (s *Service) indicatorState(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodPut {
		return unsupportedExtension(n.Driver, "set_indicator_state")
	}
	return unsupportedExtension(n.Driver, "get_indicator_state")
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

// Vendor passthru: no hardware type here has vendor methods (their
// vendor interface is no-vendor, and the fake one offers none), so the
// list of methods is empty and calling one is Ironic's "No handler for
// method" (400), after the method is checked to be named.

func (s *Service) nodeVendorMethods(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.readNode(r); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (s *Service) nodeVendorPassthru(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.readNode(r); err != nil {
		return err
	}
	return noVendorMethod(r)
}

func (s *Service) driverVendorMethods(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.driverParam(r); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (s *Service) driverVendorPassthru(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.driverParam(r); err != nil {
		return err
	}
	return noVendorMethod(r)
}

// noVendorMethod refuses the method a call names, in its path (as
// python-ironicclient sends it) or as ?method=.
func noVendorMethod(r *http.Request) error {
	method := chi.URLParam(r, "method")
	if method == "" {
		method = r.URL.Query().Get("method")
	}
	if method == "" {
		return badRequestf("Method not specified")
	}
	return badRequestf("No handler for method %s", method)
}
