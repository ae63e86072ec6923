GridSearchCV = HalvingGridSearchCV = None
