import sys
from pathlib import Path

# Stages are imported as ``stages.<name>`` the way main_job.py imports them.
sys.path.insert(0, str(Path(__file__).parent))
