-- checks: Windows(...) ids: all or none
SELECT COUNT(*) FROM input
GROUP BY Windows(Window('a', TumblingWindow(s, 1)), HoppingWindow(s, 4, 2))
