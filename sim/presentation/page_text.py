"""The page's words and look: its style sheet and the hover help for every technical term
it shows (the report's glossary says more). Plain data, kept apart from the page's
components (``sim.presentation.app``) so that the words can be read and edited in one place.
"""

from __future__ import annotations

CSS = """
.plsim-error { color: #b00020; font-size: 0.85em; }
.plsim-note { color: #555; font-size: 0.85em; }
.plsim-help { color: #1565c0; cursor: help; font-size: 0.7em; font-weight: 600;
    margin-left: 4px; display: inline-block; width: 1.5em; height: 1.5em; line-height: 1.4em;
    text-align: center; border: 1px solid #1565c0; border-radius: 50%; }
.plsim-term { border-bottom: 1px dotted #777; cursor: help; }
.plsim-page .v-btn { text-transform: none; letter-spacing: normal; }
table.plsim-table { border-collapse: collapse; font-size: 0.85em; margin: 4px 0 12px 0;
    max-width: 100%; }
table.plsim-table th { white-space: normal; vertical-align: bottom; text-align: right;
    border-bottom: 1px solid #999; padding: 3px 6px; }
table.plsim-table th[title] { cursor: help; text-decoration: underline dotted #999; }
table.plsim-table td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: right;
    white-space: nowrap; }
table.plsim-table th:nth-child(-n+2), table.plsim-table td:nth-child(-n+2) {
    text-align: left; white-space: normal; }
table.plsim-table td .plsim-ci { color: #666; display: block; font-size: 0.9em; }
.plsim-figure img { max-width: 100%; height: auto; }
"""

# Hover help for the technical terms the page shows (the report's glossary says more).
HELP = {
    "growth": "How much students learned from the fall to the spring test, in standard "
              "deviations (SD) of the state's fall scores: 0.5 is half the spread of scores "
              "across the state's students in that grade.",
    "proficient": "The share of students at or above the state test's cut score for "
                  "their grade.",
    "interval": "95% interval: the range the result would most likely fall in if the "
                "district were simulated again with new students and chance events "
                "(from the spread across replicates). An interval that includes 0 means "
                "no clear difference.",
    "vs baseline": "Paired difference: this strategy minus the baseline, on the same "
                   "simulated students in each replicate, so chance cancels out.",
    "baseline": "The strategy every other one is compared with.",
    "started": "Where students started the year: their fall level in grade-years below "
               "or above their grade (3+ below, 1-3 below, on grade: within a year, above).",
    "grade-level time": "The share of the school year's lessons spent on the student's "
                        "own grade's content.",
    "replicates": "How many times the district is simulated with different random students "
                  "and events. More replicates give narrower 95% intervals and take longer.",
    "seed": "The number that fixes the random draws: the same scenario and seed give the "
            "same results on any computer.",
    "years": "School years reported (one unreported warm-up year of ordinary teaching "
             "comes first, the same for every strategy).",
    "mean level": "The district's average starting level, in SD of the statewide "
                  "reference population (0 = the state's average, about 50% proficient).",
    "spread": "How far apart students' levels drift: grade-years of spread added per "
              "grade.",
    "room size": "Program classes are merged into rooms of up to this many students, "
                 "taught by a team of teachers.",
    "program grades": "The grades where the personalized-learning program runs (the "
                      "results describe students in these grades).",
    "pacing": "How each student's next lesson is chosen: the grade's pacing guide for the "
              "whole class, or a personalized playlist from the student's own level, and "
              "variants.",
    "floor": "The lowest content a student may work on, in years below their grade (a "
             "floor of 3: never more than 3 grades back).",
    "ceiling": "The highest content a student may work on, in years above their grade.",
    "test prep": "Weeks before the spring state test spent on grade-level content only.",
    "gradual floor": "A floor that rises during the year so that students reach grade-level "
                     "content by the state test.",
    "tutoring": "Extra small-group tutoring on grade-level content outside the block.",
    "evaluation": "Whose scores a teacher's rating (value-added) uses: the teacher of "
                  "record's own students, or the team's students shared.",
    "rating vs true effect": "How well teachers' ratings (value-added and observation) "
                             "track how good they really are in the model: a correlation, "
                             "1 = perfectly.",
    "misclassified": "Teachers rated in the wrong band (e.g. rated ineffective though "
                     "effective in truth).",
    "exits": "Teachers who leave each year.",
    "stress": "Teachers' accountability stress, 0 (none) to 1.",
    "window": "Schools that switched to a grade-level test-prep window before the test.",
    "program running": "Schools where the program still runs (a review can end it). "
                       "Strategies without a program show n/a.",
    "frontier": "Each strategy as a point: growth up, proficiency right. A strategy up and "
                "to the right of another does better on both.",
    "plausible models": "Parameter sets of the model that all fit every calibration fact "
                        "(plsim calibrate --ensemble). Run under each, on the same "
                        "students, a comparison that keeps its direction in all of them "
                        "does not hang on one fitted parameter set.",
}

BAND_TABLE_HELP = {"started": HELP["started"], "strategy": HELP["pacing"],
                   "growth (SD)": HELP["growth"] + " In brackets: " + HELP["interval"],
                   "proficient (%)": HELP["proficient"] + " In brackets: " + HELP["interval"],
                   "grade-level time (%)": HELP["grade-level time"]}
TEACHER_TABLE_HELP = {"rating vs true effect (corr)": HELP["rating vs true effect"],
                      "misclassified (%)": HELP["misclassified"],
                      "exits per year (%)": HELP["exits"], "teacher stress": HELP["stress"]}
