// Entry point: replaced by the agent host (issue 2).
return 1;
