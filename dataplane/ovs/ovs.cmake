# ovs-vswitchd-gl: Open vSwitch's ovs-vswitchd with datapath type "gl" linked in, built by
# tools/build-ovs.sh from Debian's openvswitch-source into ${PROJECT_BINARY_DIR}/ovs/.
# Built by default when the OVS source is installed (tools/setup.sh installs it); the
# script skips every step already done, so the target is cheap when nothing changed.
set(GL_OVS_TARBALL /usr/src/openvswitch/openvswitch.tar.gz CACHE FILEPATH
    "Debian's openvswitch-source tarball ovs-vswitchd-gl is built from")
if(EXISTS ${GL_OVS_TARBALL})
  set(GL_OVS_ALL ALL)
else()
  set(GL_OVS_ALL)
  message(STATUS "ovs-vswitchd-gl: ${GL_OVS_TARBALL} not found, not built by default")
endif()
add_custom_target(ovs-vswitchd-gl ${GL_OVS_ALL}
  COMMAND ${CMAKE_COMMAND} -E env OVS_TARBALL=${GL_OVS_TARBALL}
          ${PROJECT_SOURCE_DIR}/tools/build-ovs.sh ${PROJECT_BINARY_DIR}
  DEPENDS gl_dpapi gl_odp gl_flowtables
  WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
  COMMENT "Building ovs-vswitchd-gl (OVS 3.1 + dpif-gl)"
  USES_TERMINAL
  VERBATIM)
