"""Load through the real websocket (issue 31): many signed-in users per process, each a
Streamlit page session without a browser, against app instances started as App Service starts
them, a paced fake model and one Redis. `python -m bench.load --help`."""
