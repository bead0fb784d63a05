"""Operations over the whole mirror: status, doctor, CI glue, the release sweep."""
