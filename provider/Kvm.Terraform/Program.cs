// Entry point: replaced by the go-plugin server (issue 3).
return 1;
