"""The page, one module per section (see README: Project layout). Only ui/state/ touches
`st.session_state` and `st.query_params`."""
