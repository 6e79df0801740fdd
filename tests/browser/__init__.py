# A package ("browser"), so that its conftest.py does not take the module name `conftest` from tests/conftest.py,
# which other suites import (`from conftest import ServerProcess`).
