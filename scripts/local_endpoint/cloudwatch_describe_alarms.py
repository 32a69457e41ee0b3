"""Behaviour 24: DescribeAlarms applies every filter it is given, as CloudWatch does.

moto's DescribeAlarms used the first of ActionPrefix, AlarmNamePrefix, AlarmNames and StateValue
it was given and dropped the others, and ignored AlarmTypes. "Which of the environment's alarms are in ALARM" (`AlarmNamePrefix` with `StateValue`,
what a canary release watches: scripts/deploy/release.py) answered every alarm of the
environment, whatever its state, so a canary was refused for an alarm that was OK. Here every
filter given narrows the answer, AlarmNames with AlarmNamePrefix is refused, and AlarmTypes
chooses metric alarms, composite alarms or both (metric alarms only when it is omitted).

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
  (AlarmNames: "If you specify this parameter, you cannot specify AlarmNamePrefix"; AlarmTypes:
  "If you omit this parameter, only metric alarms are returned"; StateValue, ActionPrefix)
"""

from moto.cloudwatch.exceptions import InvalidParameterCombination
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


def _describe_alarms(self):
    names = self._get_param("AlarmNames", [])
    name_prefix = self._get_param("AlarmNamePrefix")
    action_prefix = self._get_param("ActionPrefix")
    state = self._get_param("StateValue")
    types = set(self._get_param("AlarmTypes", []) or ["MetricAlarm"])
    if names and name_prefix:
        raise InvalidParameterCombination("AlarmNames and AlarmNamePrefix cannot be given together")
    alarms = [
        alarm for alarm in self.cloudwatch_backend.describe_alarms()
        if (not names or alarm.name in names)
        and (not name_prefix or alarm.name.startswith(name_prefix))
        and (not action_prefix or any(action.startswith(action_prefix) for action in alarm.alarm_actions))
        and (not state or alarm.state_value == state)
    ]
    metric = [a for a in alarms if a.rule is None] if "MetricAlarm" in types else []
    composite = [a for a in alarms if a.rule is not None] if "CompositeAlarm" in types else []
    return ActionResult({"MetricAlarms": metric, "CompositeAlarms": composite})


def apply():
    CloudWatchResponse.describe_alarms = _describe_alarms
