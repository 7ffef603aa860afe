package bmcsim

import (
	"fmt"
	"io"
)

// Chassis is ipmi_sim's chassis-control program for machine m. ipmi_sim
// runs `<chassis_control> get NAME…` (the MC address, 0x20, is part of
// the configured command, so args start after it) and expects "NAME:VALUE"
// lines, and `<chassis_control> set NAME VALUE …`. Names: power (0|1),
// boot (pxe, default = disk, none), reset (1: restart), shutdown (1:
// graceful power off).
//
// ipmi_sim keeps no persistent flag for the boot device (it keeps only
// the device), so a boot device set over IPMI is persistent here.
func Chassis(m *Machine, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("chassis: want get NAME… or set NAME VALUE…, got %q", args)
	}
	switch args[0] {
	case "get":
		for _, name := range args[1:] {
			v, err := chassisGet(m, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s:%s\n", name, v)
		}
		return nil
	case "set":
		if len(args)%2 != 1 {
			return fmt.Errorf("chassis set: want NAME VALUE pairs, got %q", args[1:])
		}
		for i := 1; i < len(args); i += 2 {
			if err := chassisSet(m, args[i], args[i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("chassis: unknown operation %q (want get or set)", args[0])
}

// ipmi_sim's names for the boot devices the machine has.
var ipmiBootNames = map[string]string{DevPXE: "pxe", DevDisk: "default", "": "none"}

func chassisGet(m *Machine, name string) (string, error) {
	switch name {
	case "power":
		on, err := m.PowerState()
		if err != nil {
			return "", err
		}
		if on {
			return "1", nil
		}
		return "0", nil
	case "boot":
		b, err := m.Boot()
		if err != nil {
			return "", err
		}
		dev, _ := b.Current()
		return ipmiBootNames[dev], nil
	}
	return "", fmt.Errorf("chassis get: unknown name %q", name)
}

func chassisSet(m *Machine, name, value string) error {
	switch name {
	case "power":
		switch value {
		case "1":
			return m.PowerOn(nil)
		case "0":
			return m.PowerOff(false)
		}
	case "reset":
		if value == "1" {
			return m.Reset(nil)
		}
		return nil
	case "shutdown":
		if value == "1" {
			return m.PowerOff(true)
		}
		return nil
	case "boot":
		for dev, ipmiName := range ipmiBootNames {
			if value == ipmiName {
				return m.SetBoot(dev, true)
			}
		}
		return fmt.Errorf("chassis set boot %q: this machine boots only pxe or default (disk)", value)
	default:
		return fmt.Errorf("chassis set: unknown name %q", name)
	}
	return fmt.Errorf("chassis set %s: bad value %q", name, value)
}
