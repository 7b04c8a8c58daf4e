"""An adapter module whose import fails, as with a missing dependency."""

import a_module_that_does_not_exist  # noqa: F401
