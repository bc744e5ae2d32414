"""The platform client's pacing below a documented limit (pure: a fake clock and sleep)."""

from returns.platforms.http import CallPacer


class FakeTime:
    def __init__(self):
        self.now, self.slept = 100.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def test_a_call_counts_until_its_answer_came_back():
    t = FakeTime()
    pacer = CallPacer(2, 1.0, sleep=t.sleep, clock=t.clock)
    first = pacer.wait()
    t.now += 0.4  # a slow answer: the platform may have counted it this late
    pacer.answered(first)
    pacer.answered(pacer.wait())
    assert t.slept == []  # two calls fit in the window
    pacer.wait()  # the third waits until the first's answer is a window (+5 %) old
    assert t.slept == [1.05] and t.now == 101.45


def test_calls_spread_over_the_window_do_not_wait():
    t = FakeTime()
    pacer = CallPacer(3, 1.0, sleep=t.sleep, clock=t.clock)
    for _ in range(9):
        pacer.answered(pacer.wait())
        t.now += 0.36
    assert t.slept == []
